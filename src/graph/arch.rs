//! Every ResNet of He et al. (2015): the ImageNet family (table 1), the CIFAR family (sec. 4.2),
//! shortcut options A/B/C and the plain baselines, built with torchvision parameter names.

use super::params::ParamSource;
use super::{BatchNorm, Conv, Graph, Linear, MaxPool, ValueId};
use crate::error::{Error, Result, fail, require};

/// The deepest CIFAR ResNet `parse` accepts: the paper's deepest is 1202 (n = 200); 2000
/// (n = 333) leaves a margin. The graph, its weights and `info` grow linearly with depth (a
/// ResNet-60002 took 3.9 GB and 1000004 ran past 22 GB before this bound).
pub const MAX_CIFAR_DEPTH: usize = 2000;

/// The names the paper defines, for "did you mean".
const KNOWN: [&str; 15] = [
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet20",
    "resnet32",
    "resnet44",
    "resnet56",
    "resnet110",
    "resnet1202",
    "plain-18",
    "plain-34",
    "plain-20",
    "plain-56",
];

/// The known name closest to `name` (at most two edits, a swap of neighbours counting as one),
/// with the suffixes of `name` kept when they are valid ones.
fn suggest(name: &str) -> Option<String> {
    let cut = match name.strip_prefix("plain-") {
        Some(rest) => rest.find('-').map(|i| i + 6),
        None => name.find('-'),
    };
    let (base, suffix) = name.split_at(cut.unwrap_or(name.len()));
    let (best, d) = KNOWN
        .iter()
        .map(|k| (*k, edit_distance(base, k)))
        .min_by_key(|&(_, d)| d)?;
    (d > 0 && d <= 2).then(|| format!("{best}{suffix}"))
}

/// Optimal string alignment distance (Levenshtein plus transpositions of neighbours).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

/// How a block's input reaches its output (paper sec. 3.3 and 4.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortcut {
    /// Identity; where the shape changes, subsample and zero-pad channels (no parameters).
    A,
    /// Identity; projection (1x1 conv + BN) where the shape changes.
    B,
    /// Projection on every block.
    C,
    /// No shortcut at all: the paper's plain baseline.
    Plain,
}

/// The residual block of a stage.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockKind {
    /// Two 3x3 convs.
    Basic,
    /// 1x1 reduce, 3x3, 1x1 expand (x4).
    Bottleneck,
}

/// One of the paper's architectures: depth, block, stages, widths and shortcut option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArchSpec {
    /// Weighted layers, as the paper counts them (18, 50, 20, 110, ...).
    pub depth: usize,
    /// ImageNet stem (7x7/2 conv + max pool) and four stages, or CIFAR stem (3x3 conv) and three.
    pub imagenet: bool,
    /// Basic (two 3x3) or bottleneck (1x1, 3x3, 1x1) blocks.
    pub block: BlockKind,
    /// Blocks per stage.
    pub stages: Vec<usize>,
    /// Width (planes) of each stage.
    pub widths: Vec<usize>,
    /// How blocks' inputs reach their outputs.
    pub shortcut: Shortcut,
    /// Bottleneck stride on the first 1x1 (the paper, "v1") instead of the 3x3 (torchvision "v1.5").
    pub stride_on_1x1: bool,
}

impl ArchSpec {
    /// Parses `resnet18` ... `resnet152`, CIFAR `resnet20` ... `resnet1202` (any 6n+2 up to
    /// [`MAX_CIFAR_DEPTH`]), `plain-N`, with optional suffixes `-v1` (bottleneck stride on the 1x1)
    /// and one of `-a`, `-b`, `-c` (shortcut). The depth is plain decimal digits without a leading
    /// zero (`resnet050`, `resnet+50` are refused); a misspelt name gets a "did you mean".
    pub fn parse(name: &str) -> Result<Self> {
        let lower = name.trim().to_ascii_lowercase();
        let unknown = |why: &str| {
            let hint = suggest(&lower)
                .map(|s| format!("; did you mean '{s}'?"))
                .unwrap_or_default();
            Error::Unsupported(format!("unknown architecture '{name}': {why}{hint}"))
        };
        let mut parts = lower.split('-').collect::<Vec<_>>();
        let (plain, depth_str) = match parts.first().copied() {
            Some("plain") if parts.len() >= 2 => {
                parts.remove(0);
                (true, parts.remove(0))
            }
            Some(p) if p.starts_with("plain") => {
                parts.remove(0);
                (true, &p[5..])
            }
            Some(p) if p.starts_with("resnet") => {
                parts.remove(0);
                (false, &p[6..])
            }
            _ => {
                return Err(unknown(
                    "expected e.g. resnet18, resnet50-v1, resnet20, resnet20-b, plain-20",
                ));
            }
        };
        if depth_str.is_empty() || !depth_str.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unknown("the depth must be a number, as in resnet50"));
        }
        if depth_str.starts_with('0') {
            return Err(unknown("the depth has a leading zero"));
        }
        let depth: usize = depth_str.parse().unwrap_or(usize::MAX);
        let mut spec = Self::from_depth(depth).ok_or_else(|| {
            unknown(&format!(
                "ImageNet ResNets have depth 18, 34, 50, 101 or 152 and CIFAR ResNets 6n+2 from 8 to {MAX_CIFAR_DEPTH} (20, 32, 44, 56, 110, 1202)"
            ))
        })?;
        if plain {
            spec.shortcut = Shortcut::Plain;
        }
        let (mut stride_set, mut shortcut_set) = (false, false);
        for suffix in parts {
            match suffix {
                "v1" | "v1.5" | "v15" => {
                    require!(
                        !stride_set,
                        Unsupported,
                        "'{name}': more than one -v1 / -v1.5 suffix"
                    );
                    stride_set = true;
                    if suffix == "v1" {
                        require!(
                            spec.block == BlockKind::Bottleneck,
                            Unsupported,
                            "'{name}': -v1 only applies to bottleneck nets (50, 101, 152)"
                        );
                        spec.stride_on_1x1 = true;
                    }
                }
                "a" | "b" | "c" => {
                    require!(
                        !plain,
                        Unsupported,
                        "'{name}': a plain net has no shortcuts to choose"
                    );
                    require!(
                        !shortcut_set,
                        Unsupported,
                        "'{name}': more than one shortcut option (-a, -b, -c): pick one"
                    );
                    shortcut_set = true;
                    spec.shortcut = match suffix {
                        "a" => Shortcut::A,
                        "b" => Shortcut::B,
                        _ => Shortcut::C,
                    };
                }
                other => fail!(
                    Unsupported,
                    "unknown architecture suffix '-{other}' in '{name}' (expected -v1, -a, -b or -c)"
                ),
            }
        }
        Ok(spec)
    }

    fn from_depth(depth: usize) -> Option<Self> {
        let (block, stages) = match depth {
            18 => (BlockKind::Basic, vec![2, 2, 2, 2]),
            34 => (BlockKind::Basic, vec![3, 4, 6, 3]),
            50 => (BlockKind::Bottleneck, vec![3, 4, 6, 3]),
            101 => (BlockKind::Bottleneck, vec![3, 4, 23, 3]),
            152 => (BlockKind::Bottleneck, vec![3, 8, 36, 3]),
            d if (8..=MAX_CIFAR_DEPTH).contains(&d) && (d - 2) % 6 == 0 => {
                let n = (d - 2) / 6;
                return Some(Self {
                    depth,
                    imagenet: false,
                    block: BlockKind::Basic,
                    stages: vec![n; 3],
                    widths: vec![16, 32, 64],
                    shortcut: Shortcut::A,
                    stride_on_1x1: false,
                });
            }
            _ => return None,
        };
        Some(Self {
            depth,
            imagenet: true,
            block,
            stages,
            widths: vec![64, 128, 256, 512],
            shortcut: Shortcut::B,
            stride_on_1x1: false,
        })
    }

    /// The canonical name, which `parse` reads back to the same spec.
    pub fn name(&self) -> String {
        let mut s = match self.shortcut {
            Shortcut::Plain => format!("plain-{}", self.depth),
            _ => format!("resnet{}", self.depth),
        };
        if self.stride_on_1x1 {
            s.push_str("-v1");
        }
        let default = if self.imagenet {
            Shortcut::B
        } else {
            Shortcut::A
        };
        if self.shortcut != default && self.shortcut != Shortcut::Plain {
            s.push_str(match self.shortcut {
                Shortcut::A => "-a",
                Shortcut::B => "-b",
                _ => "-c",
            });
        }
        s
    }

    /// Input size the architecture was designed for (C, H, W).
    pub fn default_input(&self) -> [usize; 3] {
        if self.imagenet {
            [3, 224, 224]
        } else {
            [3, 32, 32]
        }
    }

    /// Classes of the paper's data set: 1000 (ImageNet) or 10 (CIFAR-10).
    pub fn default_classes(&self) -> usize {
        if self.imagenet { 1000 } else { 10 }
    }

    fn expansion(&self) -> usize {
        match self.block {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }

    /// Builds the network for per-image input `input` = (C, H, W), taking weights from `params`.
    /// The class count comes from the weights' `fc.weight` when they have one.
    pub fn build(&self, params: &mut dyn ParamSource, input: [usize; 3]) -> Result<Graph> {
        let classes = params
            .shape_of("fc.weight")
            .and_then(|s| s.first().copied())
            .filter(|&c| c > 0)
            .unwrap_or_else(|| self.default_classes());
        let mut b = Builder {
            g: Graph::new(input),
            p: params,
        };
        let mut x = 0;
        let mut channels = input[0];
        let stem_width = self.widths[0];
        if self.imagenet {
            x = b.conv_bn(x, "conv1", "bn1", channels, stem_width, 7, 2, 3, true)?;
            x = b.g.max_pool(
                "maxpool",
                x,
                MaxPool {
                    kernel: [3, 3],
                    stride: [2, 2],
                    pad: [1, 1, 1, 1],
                },
            )?;
        } else {
            x = b.conv_bn(x, "conv1", "bn1", channels, stem_width, 3, 1, 1, true)?;
        }
        b.g.tap("stem", x);
        channels = stem_width;
        for (s, (&blocks, &width)) in self.stages.iter().zip(&self.widths).enumerate() {
            for i in 0..blocks {
                let stride = if s > 0 && i == 0 { 2 } else { 1 };
                let prefix = format!("layer{}.{}", s + 1, i);
                x = self.block(&mut b, &prefix, x, channels, width, stride)?;
                channels = width * self.expansion();
            }
            b.g.tap(&format!("layer{}", s + 1), x);
        }
        x = b.g.global_avg_pool("avgpool", x);
        b.g.tap("pool", x);
        let weight = b.p.take("fc.weight", &[classes, channels])?;
        let bias = b.p.take("fc.bias", &[classes])?.data;
        x = b.g.linear(
            "fc",
            x,
            Linear {
                weight,
                bias: Some(bias),
            },
        )?;
        b.g.tap("logits", x);
        b.g.validate()?;
        Ok(b.g)
    }

    fn block(
        &self,
        b: &mut Builder,
        prefix: &str,
        x: ValueId,
        in_c: usize,
        width: usize,
        stride: usize,
    ) -> Result<ValueId> {
        let out_c = width * self.expansion();
        let p = |s: &str| format!("{prefix}.{s}");
        let branch = match self.block {
            BlockKind::Basic => {
                let y = b.conv_bn(x, &p("conv1"), &p("bn1"), in_c, width, 3, stride, 1, true)?;
                b.conv_bn(y, &p("conv2"), &p("bn2"), width, width, 3, 1, 1, false)?
            }
            BlockKind::Bottleneck => {
                let (s1, s3) = if self.stride_on_1x1 {
                    (stride, 1)
                } else {
                    (1, stride)
                };
                let y = b.conv_bn(x, &p("conv1"), &p("bn1"), in_c, width, 1, s1, 0, true)?;
                let y = b.conv_bn(y, &p("conv2"), &p("bn2"), width, width, 3, s3, 1, true)?;
                b.conv_bn(y, &p("conv3"), &p("bn3"), width, out_c, 1, 1, 0, false)?
            }
        };
        let reshapes = stride != 1 || in_c != out_c;
        let shortcut = match self.shortcut {
            Shortcut::Plain => return Ok(b.g.relu(&p("relu"), branch)),
            Shortcut::A if reshapes => b.g.shortcut_a(&p("shortcut"), x, stride, out_c)?,
            Shortcut::B if reshapes => b.projection(x, prefix, in_c, out_c, stride)?,
            Shortcut::C => b.projection(x, prefix, in_c, out_c, stride)?,
            _ => x,
        };
        b.g.add(&p("add"), branch, shortcut, true)
    }
}

struct Builder<'a> {
    g: Graph,
    p: &'a mut dyn ParamSource,
}

impl Builder<'_> {
    /// conv (no bias) -> batch norm -> optional ReLU, as torchvision writes it.
    #[allow(clippy::too_many_arguments)]
    fn conv_bn(
        &mut self,
        x: ValueId,
        conv: &str,
        bn: &str,
        in_c: usize,
        out_c: usize,
        k: usize,
        stride: usize,
        pad: usize,
        relu: bool,
    ) -> Result<ValueId> {
        let weight = self
            .p
            .take(&format!("{conv}.weight"), &[out_c, in_c, k, k])?;
        let y = self.g.conv(
            conv,
            x,
            Conv {
                weight,
                bias: None,
                stride: [stride, stride],
                pad: [pad; 4],
                relu: false,
            },
        )?;
        let bn_op = self.batch_norm(bn, out_c)?;
        let y = self.g.batch_norm(bn, y, bn_op)?;
        Ok(if relu {
            self.g.relu(&format!("{bn}.relu"), y)
        } else {
            y
        })
    }

    fn batch_norm(&mut self, name: &str, c: usize) -> Result<BatchNorm> {
        let mut t =
            |s: &str| -> Result<Vec<f32>> { Ok(self.p.take(&format!("{name}.{s}"), &[c])?.data) };
        Ok(BatchNorm {
            gamma: t("weight")?,
            beta: t("bias")?,
            mean: t("running_mean")?,
            var: t("running_var")?,
            eps: 1e-5,
            relu: false,
        })
    }

    fn projection(
        &mut self,
        x: ValueId,
        prefix: &str,
        in_c: usize,
        out_c: usize,
        stride: usize,
    ) -> Result<ValueId> {
        self.conv_bn(
            x,
            &format!("{prefix}.downsample.0"),
            &format!("{prefix}.downsample.1"),
            in_c,
            out_c,
            1,
            stride,
            0,
            false,
        )
    }
}
