//! A declarative model: an input shape, a list of layers and a class count, as JSON.
//!
//! ```json
//! { "input": [1, 28, 28], "classes": 10,
//!   "layers": [{ "type": "conv", "filters": 32, "kernel": 3 }, { "type": "relu" },
//!              { "type": "maxPool", "size": 2 }, { "type": "dense", "units": 10 }] }
//! ```
//!
//! A `dense` layer after a feature map flattens it in (channel, row, column) order, as PyTorch's
//! `flatten(1)` does on NCHW. The last layer must give `classes` logits.
//!
//! Parameters are named by layer kind and count (`conv1.weight`, `fc2.bias`, `bn1.running_mean`)
//! in PyTorch's layouts: conv weights `[out, in, k, k]`, dense weights `[out, in]`, batch norm
//! `weight` (gamma), `bias` (beta) and the buffers `running_mean`, `running_var`.
//! [`ModelSpec::params`] lists them in the order every list of a spec model uses.

use serde::{Deserialize, Serialize};

use crate::error::{Result, VatError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// No padding: the output is `(h - k) / stride + 1` (floor).
    #[default]
    Valid,
    /// Zero padding so that the output is `ceil(h / stride)`; odd totals put the extra row at
    /// the bottom and the extra column at the right (TensorFlow's rule, which the paper's code used).
    Same,
}

impl Padding {
    /// The zeros added `(before, after)` along one axis of `size` values that the convolution
    /// maps to `out` values: none for valid; for same, the total that `out` needs, the odd one
    /// after (bottom, right).
    pub fn amounts(self, size: usize, out: usize, kernel: usize, stride: usize) -> (usize, usize) {
        match self {
            Padding::Valid => (0, 0),
            Padding::Same => {
                let total = ((out - 1) * stride + kernel).saturating_sub(size);
                (total / 2, total - total / 2)
            }
        }
    }
}

fn one() -> usize {
    1
}
fn yes() -> bool {
    true
}
fn leaky_slope() -> f64 {
    0.1
}
fn bn_momentum() -> f64 {
    0.01
}
fn bn_eps() -> f64 {
    1e-6
}

/// One layer. Field names are camelCase in JSON; `type` picks the variant.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", deny_unknown_fields)]
pub enum Layer {
    /// A square `kernel` x `kernel` convolution into `filters` channels.
    Conv {
        filters: usize,
        kernel: usize,
        #[serde(default = "one")]
        stride: usize,
        #[serde(default)]
        padding: Padding,
        #[serde(default = "yes")]
        bias: bool,
    },
    /// Max over `size` x `size` windows, `stride` apart (default `size`), without padding.
    MaxPool {
        size: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stride: Option<usize>,
    },
    /// The mean of each channel over the map, giving a flat vector.
    GlobalAvgPool,
    Dense {
        units: usize,
        #[serde(default = "yes")]
        bias: bool,
    },
    Relu,
    /// `max(x, slope * x)`; the paper's convnets use 0.1.
    LeakyRelu {
        #[serde(default = "leaky_slope")]
        slope: f64,
    },
    /// Inverted dropout of a fraction `rate`, in training only.
    Dropout {
        rate: f64,
    },
    /// Batch normalisation over the batch (and the map, for a feature map), per channel.
    /// Training uses the batch's statistics; only the clean pass on the labeled batch moves the
    /// running statistics, `running = (1 - momentum) * running + momentum * batch` with the
    /// unbiased batch variance (PyTorch's convention; the paper's code's decay 0.99 is momentum
    /// 0.01). Evaluation uses the running statistics. `eps` is added to the variance (the
    /// paper's code: 1e-6).
    BatchNorm {
        #[serde(default = "bn_momentum")]
        momentum: f64,
        #[serde(default = "bn_eps")]
        eps: f64,
    },
    /// Adds N(0, std^2) noise to every value, in training only.
    GaussianNoise {
        std: f64,
    },
}

/// The shape of the values between two layers, per example.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `channels x height x width`.
    Map {
        c: usize,
        h: usize,
        w: usize,
    },
    Flat(usize),
}

impl Shape {
    pub fn len(&self) -> usize {
        match *self {
            Shape::Map { c, h, w } => c * h * w,
            Shape::Flat(n) => n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Channels: the last axis of the kernels' NHWC layout (features, for a flat vector).
    pub fn channels(&self) -> usize {
        match *self {
            Shape::Map { c, .. } => c,
            Shape::Flat(n) => n,
        }
    }
}

impl core::fmt::Display for Shape {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Shape::Map { c, h, w } => write!(f, "{c}x{h}x{w}"),
            Shape::Flat(n) => write!(f, "{n}"),
        }
    }
}

/// What a parameter or buffer is, for initialisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Glorot-uniform with these fans (Keras's default kernel initialiser, as the seed used).
    Glorot {
        fan_in: usize,
        fan_out: usize,
    },
    Zeros,
    Ones,
}

/// One named tensor of a spec model.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub shape: Vec<usize>,
    pub init: Init,
    /// Index of the layer it belongs to.
    pub layer: usize,
}

impl ParamSpec {
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ModelSpec {
    /// `[channels, height, width]` of one example.
    pub input: [usize; 3],
    pub classes: usize,
    pub layers: Vec<Layer>,
}

/// The names [`ModelSpec::preset`] knows, with what each is.
pub const PRESETS: [(&str, &str); 5] = [
    (
        "seed-cnn",
        "the seed's CNN: conv 32, conv 32, max pool, dense 128 (the default)",
    ),
    (
        "mlp-1200-600-300-150",
        "the paper's supervised MNIST MLP, batch norm after every layer (TPAMI, eps 2.1)",
    ),
    (
        "mlp-1200-1200",
        "the paper's semi-supervised MNIST MLP, batch norm after every layer (ICLR'16)",
    ),
    ("conv-small", "the paper's Conv-Small (CIFAR-10 version), for a GPU"),
    ("conv-large", "the paper's Conv-Large, for a GPU"),
];

fn conv(filters: usize, kernel: usize, padding: Padding, bias: bool) -> Layer {
    Layer::Conv {
        filters,
        kernel,
        stride: 1,
        padding,
        bias,
    }
}

fn bn() -> Layer {
    Layer::BatchNorm {
        momentum: bn_momentum(),
        eps: bn_eps(),
    }
}

impl ModelSpec {
    pub fn from_json(json: &str) -> Result<Self> {
        let spec: Self = serde_json::from_str(json).map_err(|e| VatError::InvalidConfig(format!("model spec: {e}")))?;
        spec.validate()?;
        Ok(spec)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a spec serialises")
    }

    /// The seed's CNN as a spec (`dropout`: the seed's 0.25 after the pool and 0.5 after the
    /// hidden layer). Trained by this crate's seed kernels, not the spec engine: see
    /// [`crate::config::TrainConfig::spec`].
    pub fn seed_cnn(
        input: [usize; 3],
        classes: usize,
        filters: usize,
        hidden: usize,
        dropout: Option<(f64, f64)>,
    ) -> Self {
        let mut layers = vec![
            conv(filters, 3, Padding::Valid, true),
            Layer::Relu,
            conv(filters, 3, Padding::Valid, true),
            Layer::Relu,
            Layer::MaxPool { size: 2, stride: None },
        ];
        if let Some((c, _)) = dropout {
            layers.push(Layer::Dropout { rate: c });
        }
        layers.extend([
            Layer::Dense {
                units: hidden,
                bias: true,
            },
            Layer::Relu,
        ]);
        if let Some((_, d)) = dropout {
            layers.push(Layer::Dropout { rate: d });
        }
        layers.push(Layer::Dense {
            units: classes,
            bias: true,
        });
        Self { input, classes, layers }
    }

    /// A preset by name (see [`PRESETS`]) for inputs of shape `input` and `classes` classes.
    pub fn preset(name: &str, input: [usize; 3], classes: usize) -> Result<Self> {
        let mlp = |hidden: &[usize]| {
            let mut layers = Vec::new();
            for &h in hidden {
                layers.extend([Layer::Dense { units: h, bias: false }, bn(), Layer::Relu]);
            }
            layers.extend([
                Layer::Dense {
                    units: classes,
                    bias: false,
                },
                bn(),
            ]);
            layers
        };
        let lrelu = || Layer::LeakyRelu { slope: 0.1 };
        // Conv-Small and Conv-Large (Miyato et al. 2018, Table 7; the official vat_tf cnn.py):
        // every conv is followed by batch norm and a leaky relu, and the convs carry no bias.
        // `widths`: the two blocks of three 3x3 same convs; `tail`: the 3x3 valid conv and the two
        // 1x1 convs before the average pool.
        let convnet = |widths: [usize; 2], tail: [usize; 3], noise: bool| {
            let [a, b] = widths;
            let mut layers = Vec::new();
            if noise {
                layers.push(Layer::GaussianNoise { std: 0.15 });
            }
            let block = |layers: &mut Vec<Layer>, f: usize, k: usize, p: Padding| {
                layers.extend([conv(f, k, p, false), bn(), lrelu()]);
            };
            for _ in 0..3 {
                block(&mut layers, a, 3, Padding::Same);
            }
            layers.extend([Layer::MaxPool { size: 2, stride: None }, Layer::Dropout { rate: 0.5 }]);
            for _ in 0..3 {
                block(&mut layers, b, 3, Padding::Same);
            }
            layers.extend([Layer::MaxPool { size: 2, stride: None }, Layer::Dropout { rate: 0.5 }]);
            block(&mut layers, tail[0], 3, Padding::Valid);
            block(&mut layers, tail[1], 1, Padding::Valid);
            block(&mut layers, tail[2], 1, Padding::Valid);
            layers.extend([
                Layer::GlobalAvgPool,
                Layer::Dense {
                    units: classes,
                    bias: true,
                },
            ]);
            layers
        };
        let layers = match name {
            "seed-cnn" => return Ok(Self::seed_cnn(input, classes, 32, 128, None)),
            "mlp-1200-600-300-150" => mlp(&[1200, 600, 300, 150]),
            "mlp-1200-1200" => mlp(&[1200, 1200]),
            "conv-small" => convnet([96, 192], [192, 192, 192], false),
            "conv-large" => convnet([128, 256], [512, 256, 128], true),
            other => {
                return Err(VatError::InvalidConfig(format!(
                    "unknown model '{other}'; the presets are {}, or give the path of a JSON model spec",
                    PRESETS.map(|p| p.0).join(", ")
                )));
            }
        };
        let spec = Self { input, classes, layers };
        spec.validate()?;
        Ok(spec)
    }

    pub fn input_shape(&self) -> Shape {
        let [c, h, w] = self.input;
        Shape::Map { c, h, w }
    }

    /// Values per example, `c * h * w`.
    pub fn input_len(&self) -> usize {
        self.input.iter().product()
    }

    /// The shape after each layer (`shapes()[i]` is layer i's output), checking every layer.
    pub fn shapes(&self) -> Result<Vec<Shape>> {
        let bad = |i: usize, what: String| {
            VatError::InvalidConfig(format!(
                "model spec, layer {} ({}): {what}",
                i + 1,
                layer_kind(&self.layers[i])
            ))
        };
        let mut s = self.input_shape();
        let mut out = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            s = match (*layer, s) {
                (
                    Layer::Conv {
                        filters,
                        kernel,
                        stride,
                        padding,
                        ..
                    },
                    Shape::Map { h, w, .. },
                ) => {
                    if filters == 0 || kernel == 0 || stride == 0 {
                        return Err(bad(i, "conv needs filters, kernel and stride of at least 1".into()));
                    }
                    let side = |n: usize| match padding {
                        Padding::Same => Some(n.div_ceil(stride)),
                        Padding::Valid => n.checked_sub(kernel).map(|r| r / stride + 1),
                    };
                    match (side(h), side(w)) {
                        (Some(oh), Some(ow)) => Shape::Map {
                            c: filters,
                            h: oh,
                            w: ow,
                        },
                        _ => return Err(bad(i, format!("a {kernel}x{kernel} valid conv does not fit a {s} map"))),
                    }
                }
                (Layer::MaxPool { size, stride }, Shape::Map { c, h, w }) => {
                    let st = stride.unwrap_or(size);
                    if size == 0 || st == 0 || size > h || size > w {
                        return Err(bad(i, format!("a {size}x{size} max pool does not fit a {s} map")));
                    }
                    Shape::Map {
                        c,
                        h: (h - size) / st + 1,
                        w: (w - size) / st + 1,
                    }
                }
                (Layer::GlobalAvgPool, Shape::Map { c, .. }) => Shape::Flat(c),
                (Layer::Conv { .. } | Layer::MaxPool { .. } | Layer::GlobalAvgPool, Shape::Flat(_)) => {
                    return Err(bad(
                        i,
                        format!(
                            "{} needs a feature map, but its input is a flat vector",
                            layer_kind(layer)
                        ),
                    ));
                }
                (Layer::Dense { units, .. }, _) => {
                    if units == 0 {
                        return Err(bad(i, "dense needs at least 1 unit".into()));
                    }
                    Shape::Flat(units)
                }
                (Layer::Dropout { rate }, s) => {
                    if !(0.0..1.0).contains(&rate) {
                        return Err(bad(i, format!("dropout rate must be in [0, 1), got {rate}")));
                    }
                    s
                }
                (Layer::LeakyRelu { slope }, s) => {
                    if !slope.is_finite() {
                        return Err(bad(i, format!("leaky relu slope must be finite, got {slope}")));
                    }
                    s
                }
                (Layer::BatchNorm { momentum, eps }, s) => {
                    if !(0.0..=1.0).contains(&momentum) || !eps.is_finite() || eps <= 0.0 {
                        return Err(bad(
                            i,
                            format!("batch norm needs momentum in [0, 1] and eps > 0, got {momentum} and {eps}"),
                        ));
                    }
                    s
                }
                (Layer::GaussianNoise { std }, s) => {
                    if !(std.is_finite() && std >= 0.0) {
                        return Err(bad(i, format!("gaussian noise std must be >= 0, got {std}")));
                    }
                    s
                }
                (Layer::Relu, s) => s,
            };
            if s.is_empty() {
                return Err(bad(i, format!("{} leaves nothing ({s})", layer_kind(layer))));
            }
            out.push(s);
        }
        Ok(out)
    }

    pub fn validate(&self) -> Result<()> {
        let [c, h, w] = self.input;
        if c == 0 || h == 0 || w == 0 {
            return Err(VatError::InvalidConfig(format!(
                "model spec: input must be [channels, height, width], each at least 1, got {:?}",
                self.input
            )));
        }
        if self.classes < 2 {
            return Err(VatError::InvalidConfig(format!(
                "model spec: classes must be at least 2, got {}",
                self.classes
            )));
        }
        let shapes = self.shapes()?;
        match shapes.last() {
            Some(Shape::Flat(n)) if *n == self.classes => Ok(()),
            Some(s) => Err(VatError::InvalidConfig(format!(
                "model spec: the last layer gives {s} values, but the model needs {} logits (end with a dense layer of {} units)",
                self.classes, self.classes
            ))),
            None => Err(VatError::InvalidConfig("model spec: no layers".into())),
        }
    }

    /// Every parameter and buffer, named and shaped, in layer order (for each layer: weight,
    /// bias, then batch norm's running_mean and running_var).
    pub fn params(&self) -> Vec<ParamSpec> {
        let shapes = self.shapes().expect("a validated spec");
        let mut counts = [0usize; 3];
        let mut out = Vec::new();
        let mut input = self.input_shape();
        for (i, layer) in self.layers.iter().enumerate() {
            let mut push = |name: String, shape: Vec<usize>, init: Init| {
                out.push(ParamSpec {
                    name,
                    shape,
                    init,
                    layer: i,
                })
            };
            match *layer {
                Layer::Conv {
                    filters, kernel, bias, ..
                } => {
                    counts[0] += 1;
                    let c = input.channels();
                    let field = kernel * kernel;
                    let p = format!("conv{}", counts[0]);
                    push(
                        format!("{p}.weight"),
                        vec![filters, c, kernel, kernel],
                        Init::Glorot {
                            fan_in: c * field,
                            fan_out: filters * field,
                        },
                    );
                    if bias {
                        push(format!("{p}.bias"), vec![filters], Init::Zeros);
                    }
                }
                Layer::Dense { units, bias } => {
                    counts[1] += 1;
                    let n = input.len();
                    let p = format!("fc{}", counts[1]);
                    push(
                        format!("{p}.weight"),
                        vec![units, n],
                        Init::Glorot {
                            fan_in: n,
                            fan_out: units,
                        },
                    );
                    if bias {
                        push(format!("{p}.bias"), vec![units], Init::Zeros);
                    }
                }
                Layer::BatchNorm { .. } => {
                    counts[2] += 1;
                    let c = input.channels();
                    let p = format!("bn{}", counts[2]);
                    push(format!("{p}.weight"), vec![c], Init::Ones);
                    push(format!("{p}.bias"), vec![c], Init::Zeros);
                    push(format!("{p}.running_mean"), vec![c], Init::Zeros);
                    push(format!("{p}.running_var"), vec![c], Init::Ones);
                }
                _ => {}
            }
            input = shapes[i];
        }
        out
    }

    /// Whether the tensor is a buffer (batch norm's running statistics), which the optimiser
    /// does not touch.
    pub fn is_buffer(name: &str) -> bool {
        name.ends_with(".running_mean") || name.ends_with(".running_var")
    }

    /// A one-line summary, e.g. `1x28x28 -> conv 32 3x3 -> relu -> ... -> 10`.
    pub fn describe(&self) -> String {
        let mut parts = vec![self.input_shape().to_string()];
        for l in &self.layers {
            parts.push(match l {
                Layer::Conv {
                    filters,
                    kernel,
                    stride,
                    padding,
                    ..
                } => {
                    let mut s = format!("conv {filters} {kernel}x{kernel}");
                    if *stride != 1 {
                        s += &format!(" /{stride}");
                    }
                    if *padding == Padding::Same {
                        s += " same";
                    }
                    s
                }
                Layer::MaxPool { size, .. } => format!("max pool {size}"),
                Layer::GlobalAvgPool => "global avg pool".into(),
                Layer::Dense { units, .. } => format!("dense {units}"),
                Layer::Relu => "relu".into(),
                Layer::LeakyRelu { slope } => format!("leaky relu {slope}"),
                Layer::Dropout { rate } => format!("dropout {rate}"),
                Layer::BatchNorm { .. } => "bn".into(),
                Layer::GaussianNoise { std } => format!("noise {std}"),
            });
        }
        parts.join(" -> ")
    }
}

fn layer_kind(l: &Layer) -> &'static str {
    match l {
        Layer::Conv { .. } => "conv",
        Layer::MaxPool { .. } => "maxPool",
        Layer::GlobalAvgPool => "globalAvgPool",
        Layer::Dense { .. } => "dense",
        Layer::Relu => "relu",
        Layer::LeakyRelu { .. } => "leakyRelu",
        Layer::Dropout { .. } => "dropout",
        Layer::BatchNorm { .. } => "batchNorm",
        Layer::GaussianNoise { .. } => "gaussianNoise",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_cnn_spec_names_and_shapes_its_parameters_as_the_seed_files_do() {
        let spec = ModelSpec::preset("seed-cnn", [1, 28, 28], 10).unwrap();
        let got: Vec<(String, Vec<usize>)> = spec.params().into_iter().map(|p| (p.name, p.shape)).collect();
        let want: Vec<(String, Vec<usize>)> = crate::params::PARAM_NAMES
            .iter()
            .map(|n| n.to_string())
            .zip(crate::params::param_shapes(&crate::config::ModelConfig::default()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn every_preset_builds_for_its_data() {
        for (name, _) in PRESETS {
            let input = if name.starts_with("conv-") {
                [3, 32, 32]
            } else {
                [1, 28, 28]
            };
            let spec = ModelSpec::preset(name, input, 10).unwrap();
            assert_eq!(spec.shapes().unwrap().last(), Some(&Shape::Flat(10)), "{name}");
            let back = ModelSpec::from_json(&spec.to_json()).unwrap();
            assert_eq!(back, spec, "{name} round-trips through JSON");
        }
        let large = ModelSpec::preset("conv-large", [3, 32, 32], 10).unwrap();
        // 32 -> pool 16 -> pool 8 -> valid 3x3: 6x6 x 512, then 1x1 convs and the average.
        assert!(large.shapes().unwrap().contains(&Shape::Map { c: 512, h: 6, w: 6 }));
    }

    #[test]
    fn a_spec_that_cannot_run_is_refused_naming_the_layer() {
        let cases = [
            (
                r#"{"input":[1,4,4],"classes":2,"layers":[{"type":"conv","filters":2,"kernel":5},{"type":"dense","units":2}]}"#,
                "layer 1",
            ),
            (
                r#"{"input":[1,4,4],"classes":3,"layers":[{"type":"dense","units":2}]}"#,
                "needs 3 logits",
            ),
            (
                r#"{"input":[1,4,4],"classes":2,"layers":[{"type":"dense","units":2},{"type":"maxPool","size":2}]}"#,
                "flat vector",
            ),
            (
                r#"{"input":[1,4,4],"classes":2,"layers":[{"type":"dense","units":2,"unit":3}]}"#,
                "unknown field",
            ),
            (
                r#"{"input":[1,4,4],"classes":2,"layers":[{"type":"convolution"}]}"#,
                "unknown variant",
            ),
            (
                r#"{"input":[1,4,4],"classes":2,"layers":[{"type":"dropout","rate":1},{"type":"dense","units":2}]}"#,
                "[0, 1)",
            ),
            (
                r#"{"input":[0,4,4],"classes":2,"layers":[{"type":"dense","units":2}]}"#,
                "at least 1",
            ),
        ];
        for (json, want) in cases {
            let err = ModelSpec::from_json(json).unwrap_err().to_string();
            assert!(err.contains(want), "{json}: {err}");
        }
        let err = ModelSpec::preset("resnet", [1, 28, 28], 10).unwrap_err().to_string();
        assert!(
            err.contains("mlp-1200-1200") && err.contains("JSON model spec"),
            "{err}"
        );
    }

    #[test]
    fn same_padding_and_stride_give_the_ceiling_of_the_side_over_the_stride() {
        let spec = ModelSpec::from_json(
            r#"{"input":[3,7,5],"classes":2,"layers":[{"type":"conv","filters":4,"kernel":3,"stride":2,"padding":"same"},{"type":"globalAvgPool"},{"type":"dense","units":2}]}"#,
        )
        .unwrap();
        assert_eq!(spec.shapes().unwrap()[0], Shape::Map { c: 4, h: 4, w: 3 });
    }
}
