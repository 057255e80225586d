//! Device selection. `cpu` is burn-flex (pure Rust; single-threaded in wasm); `webgpu` is
//! burn-wgpu pinned to the WebGPU API, brought up asynchronously as browsers require.

use core::str::FromStr;

use burn::tensor::Device;

use crate::error::{Result, VatError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Cpu,
    WebGpu,
}

impl FromStr for BackendKind {
    type Err = VatError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Self::Cpu),
            "webgpu" => Ok(Self::WebGpu),
            other => Err(VatError::InvalidConfig(format!(
                "unknown backend '{other}'; use 'cpu' or 'webgpu' (the TypeScript API also accepts 'auto')"
            ))),
        }
    }
}

impl BackendKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::WebGpu => "webgpu",
        }
    }
}

/// A started device and a line describing it (adapter name, driver) for logs and run.json.
#[derive(Debug, Clone)]
pub struct Backend {
    pub kind: BackendKind,
    pub device: Device,
    pub adapter: String,
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
        let adapter = format!("{} ({:?}, {}; driver {})", info.name, info.backend, info.device_type_name(), info.driver);
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
    pub async fn start(kind: BackendKind) -> Result<Self> {
        match kind {
            BackendKind::Cpu => {
                #[cfg(feature = "flex")]
                {
                    Ok(Self { kind, device: Device::flex(), adapter: "burn-flex (CPU)".into() })
                }
                #[cfg(not(feature = "flex"))]
                Err(VatError::BackendUnavailable("this build has no CPU backend (feature 'flex')".into()))
            }
            BackendKind::WebGpu => {
                #[cfg(feature = "webgpu")]
                {
                    let (device, adapter) = webgpu::start().await?;
                    Ok(Self { kind, device, adapter })
                }
                #[cfg(not(feature = "webgpu"))]
                Err(VatError::BackendUnavailable(
                    "this build has no WebGPU backend (feature 'webgpu'); use backend 'cpu'".into(),
                ))
            }
        }
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
