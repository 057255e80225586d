//! Device selection:
//! - `cpu`: this crate's own CPU kernels ([`crate::cpu`]), on `threads` threads where the build
//!   has them (natively, or a wasm module built with atomics);
//! - `burn-cpu`: burn-flex running the burn graph of the model, single-threaded; kept as a second
//!   implementation for cross-checks and as the bench's baseline;
//! - `webgpu`: burn-wgpu pinned to the WebGPU API, brought up asynchronously as browsers require.

use core::str::FromStr;

use crate::{
    cpu::par::Threads,
    error::{Result, VatError},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Cpu,
    BurnCpu,
    WebGpu,
}

impl FromStr for BackendKind {
    type Err = VatError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "burn-cpu" => Ok(Self::BurnCpu),
            "webgpu" => Ok(Self::WebGpu),
            other => Err(VatError::InvalidConfig(format!(
                "unknown backend '{other}'; use 'cpu', 'burn-cpu' or 'webgpu' (the TypeScript API also accepts 'auto')"
            ))),
        }
    }
}

impl BackendKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::BurnCpu => "burn-cpu",
            Self::WebGpu => "webgpu",
        }
    }
}

/// A started device and a line describing it (adapter name, driver) for logs and run.json.
#[derive(Debug, Clone)]
pub struct Backend {
    pub kind: BackendKind,
    pub adapter: String,
    /// The CPU kernels' threads (1 on the burn backends).
    pub threads: std::sync::Arc<Threads>,
    /// The burn device, on the burn backends.
    #[cfg(feature = "burn")]
    pub device: Option<burn::tensor::Device>,
}

#[cfg(feature = "webgpu")]
mod webgpu {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use burn::tensor::{Device, wgpu::WgpuBackend};

    use crate::error::{Result, VatError};

    // The wgpu runtime can be initialised once per process; later trainers share it.
    static STARTED: Mutex<Option<(Device, String)>> = Mutex::new(None);
    static LOST: AtomicBool = AtomicBool::new(false);

    pub async fn start() -> Result<(Device, String)> {
        if let Some(started) = STARTED.lock().expect("not poisoned").clone() {
            return Ok(started);
        }
        let (device, setup) = Device::wgpu_options()
            .graphics_api(WgpuBackend::WebGpu)
            .init_with_setup_async()
            .await
            .map_err(|e| {
                VatError::BackendUnavailable(format!(
                    "no usable WebGPU adapter ({e}); use backend 'cpu', or a browser with WebGPU enabled"
                ))
            })?;
        let info = setup.adapter.get_info();
        let adapter = format!(
            "{} ({:?}, {}; driver {})",
            info.name,
            info.backend,
            info.device_type_name(),
            info.driver
        );
        setup.device.set_device_lost_callback(|reason, message| {
            LOST.store(true, Ordering::SeqCst);
            let _ = (reason, message);
        });
        *STARTED.lock().expect("not poisoned") = Some((device.clone(), adapter.clone()));
        Ok((device, adapter))
    }

    pub fn check_alive() -> Result<()> {
        if LOST.load(Ordering::SeqCst) {
            return Err(VatError::BackendFailure(
                "the WebGPU device was lost; reload the page or restart, then resume from the last checkpoint".into(),
            ));
        }
        Ok(())
    }

    trait DeviceTypeName {
        fn device_type_name(&self) -> &'static str;
    }
    impl DeviceTypeName for burn::tensor::wgpu::wgpu::AdapterInfo {
        fn device_type_name(&self) -> &'static str {
            use burn::tensor::wgpu::wgpu::DeviceType::*;
            match self.device_type {
                Other => "other",
                IntegratedGpu => "integrated GPU",
                DiscreteGpu => "discrete GPU",
                VirtualGpu => "virtual GPU",
                Cpu => "CPU/software",
            }
        }
    }
}

impl Backend {
    /// Starts `kind`. `threads` is for `cpu` (0: every core); the burn backends take only 1.
    pub async fn start(kind: BackendKind, threads: usize) -> Result<Self> {
        if kind != BackendKind::Cpu && threads > 1 {
            return Err(VatError::InvalidConfig(format!(
                "backend '{}' runs on one thread; threads must be 1, got {threads}",
                kind.as_str()
            )));
        }
        let one = || Threads::new(1).map(std::sync::Arc::new);
        match kind {
            BackendKind::Cpu => {
                let threads = Threads::new(threads)?;
                let n = threads.count();
                Ok(Self {
                    kind,
                    adapter: format!("vat-core CPU kernels, {n} thread{}", if n == 1 { "" } else { "s" }),
                    threads: std::sync::Arc::new(threads),
                    #[cfg(feature = "burn")]
                    device: None,
                })
            }
            BackendKind::BurnCpu => {
                #[cfg(feature = "burn-cpu")]
                {
                    Ok(Self {
                        kind,
                        adapter: "burn-flex (CPU)".into(),
                        threads: one()?,
                        device: Some(burn::tensor::Device::flex()),
                    })
                }
                #[cfg(not(feature = "burn-cpu"))]
                {
                    let _ = one;
                    Err(VatError::BackendUnavailable(
                        "this build has no burn CPU backend (feature 'burn-cpu'); use backend 'cpu'".into(),
                    ))
                }
            }
            BackendKind::WebGpu => {
                #[cfg(feature = "webgpu")]
                {
                    let (device, adapter) = webgpu::start().await?;
                    Ok(Self {
                        kind,
                        adapter,
                        threads: one()?,
                        device: Some(device),
                    })
                }
                #[cfg(not(feature = "webgpu"))]
                {
                    let _ = one;
                    Err(VatError::BackendUnavailable(
                        "this build has no WebGPU backend (feature 'webgpu'); use backend 'cpu'".into(),
                    ))
                }
            }
        }
    }

    /// The burn device of a burn backend.
    #[cfg(feature = "burn")]
    pub fn burn_device(&self) -> Option<&burn::tensor::Device> {
        self.device.as_ref()
    }

    /// Fails fast with a clear error once the WebGPU device has been lost.
    pub fn check_alive(&self) -> Result<()> {
        #[cfg(feature = "webgpu")]
        if self.kind == BackendKind::WebGpu {
            return webgpu::check_alive();
        }
        Ok(())
    }
}
