//! Weights and checkpoints as safetensors, readable by `safetensors`-aware tools
//! (PyTorch, JAX, numpy) without this project.
//!
//! Layout (documented in the README): little-endian f32 tensors named as in [`param_names`]
//! (the seed's eight, [`crate::params::PARAM_NAMES`], or a spec's, [`crate::spec`]), in
//! PyTorch's layouts, with the model (its spec, for a spec model) in the `model_config` metadata. A checkpoint adds the optimiser buffers as
//! `optim.first.<name>` and `optim.second.<name>`, and its metadata holds the step count,
//! the RNG state and the config, so that resuming continues the same stream of draws.

use std::collections::{BTreeMap, HashMap};

use safetensors::{Dtype, SafeTensors};

use crate::{
    config::{ModelConfig, OptimizerKind, TrainConfig},
    cpu::optim::HostOptim,
    error::{Result, VatError},
    params::{HostParams, param_names, param_shapes},
};

pub const FORMAT_VERSION: &str = "1";

/// Reads a flat tensor to the host (asynchronously, as WebGPU requires).
#[cfg(feature = "burn")]
pub async fn read_f32(t: burn::tensor::Tensor<1>) -> Result<Vec<f32>> {
    let data = t
        .into_data_async()
        .await
        .map_err(|e| VatError::BackendFailure(format!("reading a tensor back failed: {e:?}")))?;
    data.as_slice::<f32>()
        .map(|s| s.to_vec())
        .map_err(|e| VatError::BackendFailure(format!("unexpected tensor dtype: {e:?}")))
}

/// Writes a safetensors file (8-byte little-endian header length, JSON header, raw data).
///
/// Written here rather than with `safetensors::serialize` because that takes the metadata as a
/// `HashMap` and so orders its keys at random; sorted keys make the same weights give the
/// same bytes. Reading uses the `safetensors` crate.
/// The metadata key of the data section's checksum.
const CHECKSUM: &str = "data_fnv1a64";

/// FNV-1a (64 bit) over `bytes`, in hex: the checksum that tells a damaged file from a good one
/// (a flipped bit that still reads as a finite number, say).
fn fnv1a64(bytes: impl IntoIterator<Item = u8>) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn serialize(tensors: Vec<(String, Vec<usize>, Vec<f32>)>, mut metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let mut header = serde_json::Map::new();
    // The data section is the tensors' bytes in this order.
    let data = tensors
        .iter()
        .flat_map(|(_, _, v)| v.iter().flat_map(|x| x.to_le_bytes()));
    metadata.insert(CHECKSUM.into(), fnv1a64(data));
    let meta: BTreeMap<String, String> = metadata.into_iter().collect();
    header.insert(
        "__metadata__".into(),
        serde_json::to_value(meta).expect("strings serialise"),
    );
    let mut offset = 0usize;
    for (name, shape, values) in &tensors {
        let end = offset + 4 * values.len();
        header.insert(
            name.clone(),
            serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [offset, end] }),
        );
        offset = end;
    }
    // serde_json's Map is ordered by key (no `preserve_order` feature), so the header is sorted.
    let mut json = serde_json::to_vec(&serde_json::Value::Object(header)).expect("header serialises");
    // Pad with spaces so the data starts 8-byte aligned, as the format recommends.
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len() + offset);
    out.extend((json.len() as u64).to_le_bytes());
    out.extend(json);
    // Data in `tensors` order, which is the order the offsets above were assigned in.
    for (_, _, values) in &tensors {
        out.extend(values.iter().flat_map(|x| x.to_le_bytes()));
    }
    Ok(out)
}

fn base_metadata(model: &ModelConfig) -> HashMap<String, String> {
    HashMap::from([
        ("format".into(), "pt".into()),
        (
            "producer".into(),
            concat!("vat-core ", env!("CARGO_PKG_VERSION")).into(),
        ),
        ("vat_format_version".into(), FORMAT_VERSION.into()),
        (
            "model_config".into(),
            serde_json::to_string(model).expect("config serialises"),
        ),
        ("input".into(), {
            let [c, h, w] = model.input_shape();
            format!("float32 [batch, {c}, {h}, {w}] (NCHW), pixel values / 255; logits out")
        }),
    ])
}

fn named(params: &HostParams, prefix: &str, model: &ModelConfig) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let (names, shapes) = (param_names(model), param_shapes(model));
    params
        .iter()
        .enumerate()
        .map(|(i, v)| (format!("{prefix}{}", names[i]), shapes[i].clone(), v.clone()))
        .collect()
}

/// The model's weights as a safetensors file.
pub fn export_weights(params: &HostParams, model: &ModelConfig) -> Result<Vec<u8>> {
    serialize(named(params, "", model), base_metadata(model))
}

/// Model, optimiser buffers, step count and RNG state, plus `loop_state`: an opaque string
/// (JSON from the TypeScript loop: epoch, batch, metrics) kept in the same file so that one
/// rename makes the whole checkpoint visible at once.
pub fn export_checkpoint(
    params: &HostParams,
    opt: &HostOptim,
    rng_state: u64,
    config: &TrainConfig,
    loop_state: &str,
) -> Result<Vec<u8>> {
    let mut tensors = named(params, "", &config.model);
    tensors.extend(named(&opt.first, "optim.first.", &config.model));
    tensors.extend(named(&opt.second, "optim.second.", &config.model));
    let mut meta = base_metadata(&config.model);
    meta.insert(
        "optimizer".into(),
        serde_json::to_string(&opt.kind).expect("serialises"),
    );
    meta.insert("optimizer_step".into(), opt.t.to_string());
    // A string: JS numbers cannot hold every u64.
    meta.insert("rng_state".into(), rng_state.to_string());
    meta.insert(
        "train_config".into(),
        serde_json::to_string(config).expect("serialises"),
    );
    meta.insert("loop_state".into(), loop_state.into());
    serialize(tensors, meta)
}

fn parse(bytes: &[u8]) -> Result<SafeTensors<'_>> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        VatError::WeightsFormat(format!("not a readable safetensors file ({e}); export weights with `vat` or write them with the safetensors library"))
    })?;
    // Files we wrote carry a checksum of their data (other tools' files need none).
    let (n, header) = SafeTensors::read_metadata(bytes).map_err(|e| VatError::WeightsFormat(format!("{e}")))?;
    if let Some(want) = header.metadata().as_ref().and_then(|m| m.get(CHECKSUM)) {
        let got = fnv1a64(bytes[8 + n..].iter().copied());
        if &got != want {
            return Err(VatError::WeightsFormat(format!(
                "the file's data does not match its checksum ({CHECKSUM} {want}, the data hashes to {got}): it is damaged; use an earlier copy"
            )));
        }
    }
    Ok(st)
}

fn missing(name: &str, model: &ModelConfig) -> VatError {
    VatError::WeightsFormat(format!(
        "tensor '{name}' is missing; the file must hold {}",
        param_names(model).join(", ")
    ))
}

fn tensor_f32(st: &SafeTensors<'_>, name: &str, shape: &[usize], model: &ModelConfig) -> Result<Vec<f32>> {
    let view = st.tensor(name).map_err(|_| missing(name, model))?;
    if view.dtype() != Dtype::F32 {
        return Err(VatError::WeightsFormat(format!(
            "tensor '{name}' is {:?}; only F32 is supported",
            view.dtype()
        )));
    }
    if view.shape() != shape {
        return Err(VatError::WeightsFormat(format!(
            "tensor '{name}' has shape {:?} but this model needs {:?}; was it saved for another architecture?",
            view.shape(),
            shape
        )));
    }
    let values: Vec<f32> = view
        .data()
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if let Some(bad) = values.iter().position(|v| !v.is_finite()) {
        return Err(VatError::WeightsFormat(format!(
            "tensor '{name}' holds a non-finite value at index {bad}"
        )));
    }
    Ok(values)
}

fn read_params(st: &SafeTensors<'_>, prefix: &str, model: &ModelConfig) -> Result<HostParams> {
    param_shapes(model)
        .iter()
        .zip(param_names(model))
        .map(|(shape, name)| tensor_f32(st, &format!("{prefix}{name}"), shape, model))
        .collect()
}

/// Reads weights for `model` from a weights file or a checkpoint.
pub fn import_weights(bytes: &[u8], model: &ModelConfig) -> Result<HostParams> {
    let st = parse(bytes)?;
    read_params(&st, "", model)
}

/// The model a weights file (or checkpoint) declares in its `model_config` metadata (the seed's
/// CNN when it has none), held to the shapes of its tensors from the header alone: a file that
/// declares, say, 512x512 inputs but holds 28x28 tensors is refused before anything is
/// allocated for the declared model.
pub fn weights_model(bytes: &[u8]) -> Result<ModelConfig> {
    let st = parse(bytes)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| VatError::WeightsFormat(format!("{e}")))?;
    let model: ModelConfig = match header.metadata().as_ref().and_then(|m| m.get("model_config")) {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| VatError::WeightsFormat(format!("the file's model_config is not a model: {e}")))?,
        None => ModelConfig::default(),
    };
    model
        .validate()
        .map_err(|e| VatError::WeightsFormat(format!("the file's model_config does not hold: {e}")))?;
    for (shape, name) in param_shapes(&model).iter().zip(param_names(&model)) {
        let view = st.tensor(&name).map_err(|_| missing(&name, &model))?;
        if view.shape() != shape.as_slice() {
            return Err(VatError::WeightsFormat(format!(
                "tensor '{name}' has shape {:?} but the model_config the file declares needs {:?}; the file is inconsistent",
                view.shape(),
                shape
            )));
        }
    }
    Ok(model)
}

/// What a checkpoint restores besides the config.
pub struct Checkpoint {
    pub params: HostParams,
    pub opt: HostOptim,
    pub rng_state: u64,
    pub loop_state: String,
}

fn checkpoint_metadata(bytes: &[u8]) -> Result<HashMap<String, String>> {
    parse(bytes)?;
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| VatError::WeightsFormat(format!("{e}")))?;
    header
        .metadata()
        .clone()
        .ok_or_else(|| VatError::WeightsFormat("the checkpoint has no metadata; is it a weights file?".into()))
}

fn meta_get(meta: &HashMap<String, String>, k: &str) -> Result<String> {
    meta.get(k)
        .cloned()
        .ok_or_else(|| VatError::WeightsFormat(format!("checkpoint metadata lacks '{k}'; is it a weights file?")))
}

/// The config a checkpoint was trained with (its metadata's `train_config`), checked.
pub fn checkpoint_config(bytes: &[u8]) -> Result<TrainConfig> {
    let meta = checkpoint_metadata(bytes)?;
    let saved: TrainConfig = serde_json::from_str(&meta_get(&meta, "train_config")?)
        .map_err(|e| VatError::WeightsFormat(format!("checkpoint train_config: {e}")))?;
    saved
        .validate()
        .map_err(|e| VatError::WeightsFormat(format!("the checkpoint's train_config does not hold: {e}")))?;
    Ok(saved)
}

/// The names (the API's) of the settings where two configs differ, each with both values.
pub fn config_differences(a: &TrainConfig, b: &TrainConfig) -> Vec<(String, String, String)> {
    fn flat(c: &TrainConfig) -> BTreeMap<String, serde_json::Value> {
        let mut v = serde_json::to_value(c).expect("serialises");
        let model = v.as_object_mut().expect("an object").remove("model").expect("a model");
        let mut out: BTreeMap<String, serde_json::Value> =
            v.as_object().expect("an object").clone().into_iter().collect();
        out.extend(model.as_object().expect("an object").clone());
        out
    }
    let (fa, fb) = (flat(a), flat(b));
    // Every key of either: a model spec is present in one config only when it differs.
    let keys: std::collections::BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
    let show = |v: Option<&serde_json::Value>| match v {
        None => "-".to_string(),
        // A spec is long: its one-line summary says what differs.
        Some(v) => match serde_json::from_value::<crate::spec::ModelSpec>(v.clone()) {
            Ok(spec) => format!("'{}'", spec.describe()),
            Err(_) => v.to_string(),
        },
    };
    keys.into_iter()
        .filter(|k| fa.get(*k) != fb.get(*k))
        .map(|k| {
            let (x, y) = (show(fa.get(k)), show(fb.get(k)));
            let name = if k == "spec" { "model".to_string() } else { k.clone() };
            (
                name,
                if x == "-" && k == "spec" {
                    "'seed-cnn'".into()
                } else {
                    x
                },
                if y == "-" && k == "spec" {
                    "'seed-cnn'".into()
                } else {
                    y
                },
            )
        })
        .collect()
}

/// Reads a checkpoint written by [`export_checkpoint`] for the same config: every setting must
/// match the one the checkpoint was trained with (a resume with other settings goes through
/// [`crate::train::Trainer::from_checkpoint`], which says which and refuses or applies them).
pub fn import_checkpoint(bytes: &[u8], config: &TrainConfig) -> Result<Checkpoint> {
    let st = parse(bytes)?;
    let meta = checkpoint_metadata(bytes)?;
    let get = |k: &str| meta_get(&meta, k);
    let saved = checkpoint_config(bytes)?;
    let differ = config_differences(&saved, config);
    if !differ.is_empty() {
        let list: Vec<String> = differ
            .iter()
            .map(|(k, s, c)| format!("{k} (checkpoint {s}, here {c})"))
            .collect();
        return Err(VatError::InvalidConfig(format!(
            "the checkpoint was trained with other settings: {}; resume it with its own settings",
            list.join(", ")
        )));
    }
    let kind: OptimizerKind = serde_json::from_str(&get("optimizer")?)
        .map_err(|e| VatError::WeightsFormat(format!("checkpoint optimizer: {e}")))?;
    let number = |k: &str| -> Result<u64> {
        get(k)?
            .parse()
            .map_err(|e| VatError::WeightsFormat(format!("checkpoint {k}: {e}")))
    };
    let params = read_params(&st, "", &config.model)?;
    let opt = HostOptim {
        kind,
        first: read_params(&st, "optim.first.", &config.model)?,
        second: read_params(&st, "optim.second.", &config.model)?,
        t: number("optimizer_step")?,
    };
    Ok(Checkpoint {
        params,
        opt,
        rng_state: number("rng_state")?,
        loop_state: meta.get("loop_state").cloned().unwrap_or_default(),
    })
}
