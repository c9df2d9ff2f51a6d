//! The CPU training reference against PyTorch (tests/fixtures/training, see its README): the
//! state_dict names and file round trip, every backward op against finite differences of the
//! forward reference, and whole training steps of ResNet-20 and plain-20.

mod common;

use common::{training_fixture as fixture, training_graph as fixture_graph};

use resnet_wgpu::graph::Graph;
use resnet_wgpu::model;
use resnet_wgpu::train::state_dict::{self, ParamKind};
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};

/// The two fixture nets: folder and the arch name their file is loaded with (plain-20's tensor
/// names alone would read as resnet20).
const NETS: [(&str, &str); 2] = [("resnet20", "resnet20"), ("plain20", "plain-20")];

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("resnet-wgpu-train-{}-{name}", std::process::id()))
}

#[test]
fn params_are_the_fixture_trainable_tensors_in_node_order() {
    for (net, arch) in NETS {
        let g = fixture_graph(net, arch);
        let params = state_dict::params(&g);
        let bytes = std::fs::read(fixture(net, "weights.safetensors")).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let mut trainable: Vec<String> = file
            .names()
            .into_iter()
            .filter(|k| !k.contains("running_") && !k.ends_with("num_batches_tracked"))
            .map(str::to_string)
            .collect();
        trainable.sort();
        let mut names: Vec<String> = params.iter().map(|p| p.name.clone()).collect();
        names.sort();
        assert_eq!(names, trainable, "{net}");
        // 19 convs, 19 batch norms (gamma, beta), fc weight and bias.
        assert_eq!(params.len(), 19 + 2 * 19 + 2, "{net}");
        let convs = params
            .iter()
            .filter(|p| p.kind == ParamKind::ConvWeight)
            .count();
        assert_eq!(convs, 19, "{net}");
        let order: Vec<&str> = params.iter().take(4).map(|p| p.name.as_str()).collect();
        assert_eq!(
            order,
            [
                "conv1.weight",
                "bn1.weight",
                "bn1.bias",
                "layer1.0.conv1.weight"
            ]
        );
        let last: Vec<&str> = params
            .iter()
            .rev()
            .take(2)
            .map(|p| p.name.as_str())
            .collect();
        assert_eq!(last, ["fc.bias", "fc.weight"]);
        for p in &params {
            let t = file.tensor(&p.name).unwrap();
            assert_eq!(t.shape(), p.shape.as_slice(), "{}", p.name);
            assert_eq!(state_dict::param_data(&g, p).len(), t.data().len() / 4);
        }
    }
}

/// Every tensor of `a` and `b`: same names, dtypes, shapes and bytes.
fn assert_same_tensors(a: &Path, b: &Path) {
    let (ba, bb) = (std::fs::read(a).unwrap(), std::fs::read(b).unwrap());
    let (fa, fb) = (
        SafeTensors::deserialize(&ba).unwrap(),
        SafeTensors::deserialize(&bb).unwrap(),
    );
    let mut names = fa.names();
    names.sort();
    let mut other = fb.names();
    other.sort();
    assert_eq!(names, other, "{} vs {}", a.display(), b.display());
    for name in names {
        let (ta, tb) = (fa.tensor(name).unwrap(), fb.tensor(name).unwrap());
        assert_eq!(ta.dtype(), tb.dtype(), "{name}");
        assert_eq!(ta.shape(), tb.shape(), "{name}");
        assert!(ta.data() == tb.data(), "{name}: the values differ");
    }
}

#[test]
fn save_state_reproduces_the_fixture_state_dict_bit_for_bit() {
    for (net, arch) in NETS {
        let g = fixture_graph(net, arch);
        let out = scratch(&format!("{net}.safetensors"));
        state_dict::save_state(&out, &g, 0, Some(arch)).unwrap();
        assert_same_tensors(&out, &fixture(net, "weights.safetensors"));
        let mut tmp = out.clone().into_os_string();
        tmp.push(".tmp");
        assert!(!Path::new(&tmp).exists(), "the temporary file was left");
        // The metadata names the arch, so the file loads as plain-20 without --arch.
        let loaded = model::load_file(&out, None).unwrap();
        assert_eq!(loaded.arch().unwrap().name(), arch);
        std::fs::remove_file(&out).unwrap();
    }
}

#[test]
fn save_state_writes_the_step_count_and_a_changed_weight() {
    let (net, arch) = NETS[0];
    let mut g = fixture_graph(net, arch);
    let p = state_dict::params(&g)[0].clone();
    state_dict::param_data_mut(&mut g, &p)[0] = 42.0;
    let out = scratch("changed.safetensors");
    state_dict::save_state(&out, &g, 7, None).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let w = file.tensor("conv1.weight").unwrap();
    assert_eq!(f32::from_le_bytes(w.data()[..4].try_into().unwrap()), 42.0);
    let n = file.tensor("layer3.2.bn2.num_batches_tracked").unwrap();
    assert_eq!(n.dtype(), safetensors::Dtype::I64);
    assert_eq!(i64::from_le_bytes(n.data().try_into().unwrap()), 7);
    std::fs::remove_file(&out).unwrap();
}

#[test]
fn save_tensors_round_trips_the_fixture_gradients() {
    let (net, _) = NETS[0];
    let path = fixture(net, "grads.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let named: Vec<(String, resnet_wgpu::Tensor)> = file
        .tensors()
        .into_iter()
        .map(|(name, t)| {
            let data = t
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            (
                name,
                resnet_wgpu::Tensor::new(t.shape().to_vec(), data).unwrap(),
            )
        })
        .collect();
    let out = scratch("grads.safetensors");
    state_dict::save_tensors(&out, &named).unwrap();
    assert_same_tensors(&out, &path);
    std::fs::remove_file(&out).unwrap();
}

#[test]
fn save_state_to_a_missing_folder_is_an_io_error() {
    let g = fixture_graph(NETS[0].0, NETS[0].1);
    let out = scratch("no/such/folder/state.safetensors");
    let err = state_dict::save_state(&out, &g, 0, None).unwrap_err();
    assert_eq!(err.kind(), "Io", "{err}");
}

// ---------------------------------------------------------------------------------------------
// Whole training steps against PyTorch.

use resnet_wgpu::reference::train::{CpuTrainer, Hyper};

/// The fixture batch: NCHW input and labels.
fn fixture_batch(net: &str) -> (Vec<f32>, Vec<usize>, usize) {
    let input = common::npy(&fixture(net, "input.npy"));
    let bytes = std::fs::read(fixture(net, "labels.npy")).unwrap();
    let labels: Vec<i64> = npyz::NpyFile::new(&bytes[..]).unwrap().into_vec().unwrap();
    let labels = labels.into_iter().map(|l| l as usize).collect();
    (input.data, labels, input.shape[0])
}

/// Every f32 tensor of a safetensors file, and the I64 ones as f32 too (num_batches_tracked).
fn read_tensors(path: &Path) -> Vec<(String, String, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut out: Vec<_> = file
        .tensors()
        .into_iter()
        .map(|(name, t)| {
            let values = match t.dtype() {
                safetensors::Dtype::F32 => t
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                safetensors::Dtype::I64 => t
                    .data()
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                other => panic!("{name}: unexpected dtype {other:?}"),
            };
            (name, format!("{:?}", t.dtype()), values)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// How far one tensor is from PyTorch's: the max abs error, and that error relative to `scale`
/// (the tensor's largest |value|, or for a state after training the largest change training made
/// to it, so that a wrong update cannot hide behind the size of the weights).
fn max_err(got: &[f32], want: &[f32]) -> f64 {
    assert_eq!(got.len(), want.len());
    got.iter().zip(want).fold(0.0f64, |m, (&g, &w)| {
        let d = (g as f64 - w as f64).abs();
        assert!(d.is_finite(), "non-finite value: got {g}, want {w}");
        m.max(d)
    })
}

fn max_abs(v: &[f32]) -> f64 {
    v.iter().fold(0.0f64, |m, &x| m.max(x.abs() as f64))
}

fn max_diff(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (&x, &y)| m.max((x as f64 - y as f64).abs()))
}

/// Checks that every tensor of `got` is within `tol` (relative, see [`max_err`]) of `want`;
/// returns the worst relative error and prints each tensor's that is over a tenth of `tol`.
fn check_tensors(
    what: &str,
    got: &[(String, Vec<f32>)],
    want: &[(String, Vec<f32>)],
    scale: impl Fn(&str, &[f32]) -> f64,
    tol: f64,
) -> f64 {
    assert_eq!(got.len(), want.len(), "{what}: tensor count");
    let mut worst = 0.0f64;
    for ((name, g), (wname, w)) in got.iter().zip(want) {
        assert_eq!(name, wname, "{what}");
        let s = scale(name, w);
        assert!(s > 0.0, "{what} {name}: a zero reference checks nothing");
        let e = max_err(g, w);
        if e / s > tol / 10.0 {
            eprintln!(
                "  {what} {name}: max abs err {e:.2e}, relative {:.2e}",
                e / s
            );
        }
        assert!(
            e / s <= tol,
            "{what} {name}: max abs err {e:.2e} is {:.2e} of {s:.2e}, over {tol:.0e}",
            e / s
        );
        worst = worst.max(e / s);
    }
    eprintln!("{what}: worst relative error {worst:.2e} (tolerance {tol:.0e})");
    worst
}

/// Tolerances per net, each a few times the error measured against PyTorch (see
/// [`training_matches_pytorch`]).
struct Tolerances {
    logits: f64,
    loss: f64,
    grads: f64,
    step1: f64,
    losses3: f64,
    step3: f64,
}

/// The state_dict of a trainer as a sorted list, num_batches_tracked included, through
/// save_state (so the checkpoint writer is under test too).
fn trainer_state(t: &CpuTrainer, name: &str) -> Vec<(String, Vec<f32>)> {
    let p = scratch(name);
    state_dict::save_state(&p, &t.graph, t.steps, None).unwrap();
    let out = named(&p);
    std::fs::remove_file(&p).unwrap();
    out
}

fn named(path: &Path) -> Vec<(String, Vec<f32>)> {
    read_tensors(path)
        .into_iter()
        .map(|(n, _, v)| (n, v))
        .collect()
}

/// One, then two more CPU training steps against PyTorch: logits, loss, every gradient, the state
/// after one step, the three losses, the state after three.
fn training_matches_pytorch(net: &str, arch: &str, tol: Tolerances) {
    let (input, labels, batch) = fixture_batch(net);
    let mut t = CpuTrainer::new(fixture_graph(net, arch), Hyper::default());
    let start = named(&fixture(net, "weights.safetensors"));
    // A state tensor's scale is what training changed in it; num_batches_tracked (exact
    // integers) by its value.
    let change = |name: &str, want: &[f32]| {
        let w0 = &start.iter().find(|(n, _)| n == name).unwrap().1;
        let d = max_diff(want, w0);
        if name.ends_with("num_batches_tracked") {
            max_abs(want)
        } else {
            d
        }
    };
    let timer = std::time::Instant::now();
    let out = t.step(&input, &labels, batch);
    eprintln!("{net}: one CPU training step took {:.1?}", timer.elapsed());
    let logits = common::npy(&fixture(net, "logits_train.npy")).data;
    let e = max_err(&out.logits, &logits) / max_abs(&logits);
    eprintln!(
        "{net} logits: relative error {e:.2e} (tolerance {:.0e})",
        tol.logits
    );
    assert!(e <= tol.logits, "{net} logits: {e:.2e}");
    let loss = common::npy(&fixture(net, "loss.npy")).data[0];
    let e = (out.loss as f64 - loss as f64).abs() / loss as f64;
    eprintln!(
        "{net} loss {} vs torch {loss}: relative error {e:.2e}",
        out.loss
    );
    assert!(e <= tol.loss, "{net} loss: {e:.2e}");
    let mut grads: Vec<(String, Vec<f32>)> =
        out.grads.into_iter().map(|(n, g)| (n, g.data)).collect();
    grads.sort_by(|a, b| a.0.cmp(&b.0));
    let want = named(&fixture(net, "grads.safetensors"));
    check_tensors(
        &format!("{net} grads"),
        &grads,
        &want,
        |_, w| max_abs(w),
        tol.grads,
    );
    let want = named(&fixture(net, "step1.safetensors"));
    check_tensors(
        &format!("{net} step 1"),
        &trainer_state(&t, &format!("{net}-1")),
        &want,
        change,
        tol.step1,
    );
    let mut losses = vec![out.loss];
    for _ in 0..2 {
        losses.push(t.step(&input, &labels, batch).loss);
    }
    let want = common::npy(&fixture(net, "losses3.npy")).data;
    for (i, (&l, &w)) in losses.iter().zip(&want).enumerate() {
        let e = (l as f64 - w as f64).abs() / w as f64;
        eprintln!(
            "{net} loss before step {}: {l} vs torch {w}: relative error {e:.2e}",
            i + 1
        );
        assert!(e <= tol.losses3, "{net} losses3[{i}]: {e:.2e}");
    }
    let want = named(&fixture(net, "step3.safetensors"));
    check_tensors(
        &format!("{net} step 3"),
        &trainer_state(&t, &format!("{net}-3")),
        &want,
        change,
        tol.step3,
    );
}

// Tolerances: a few times what was measured (relative errors as check_tensors defines them):
//
// | | resnet20 | plain20 |
// |---|---|---|
// | logits | 1.9e-7 | 1.4e-6 |
// | loss | 7.8e-8 | 1.1e-7 |
// | gradients (worst tensor) | 2.4e-6 | 8.2e-6 |
// | state after 1 step | 1.4e-4 | 1.7e-4 |
// | losses before steps 2, 3 | 6.8e-8, 0 | 1.1e-7, 9.3e-6 |
// | state after 3 steps | 1.4e-3 | 1.2e-1 |
//
// plain-20's third step is chaotic on this batch, not wrong: perturbing its starting weights by
// a relative 1e-6 (ten f32 ulps) moved our own gradients by 1.2e-2 of their scale at step 1 and
// the state after 3 steps by up to 0.6 of its change (the BN betas), so two correct f32
// implementations with different summation orders part that far. Its step-3 tolerance is loose;
// resnet20's, well conditioned, would catch any error in momentum or weight decay.

#[test]
fn resnet20_training_matches_pytorch() {
    training_matches_pytorch(
        "resnet20",
        "resnet20",
        Tolerances {
            logits: 1e-5,
            loss: 1e-6,
            grads: 5e-5,
            step1: 1e-3,
            losses3: 1e-6,
            step3: 1e-2,
        },
    );
}

#[test]
fn plain20_training_matches_pytorch() {
    training_matches_pytorch(
        "plain20",
        "plain-20",
        Tolerances {
            logits: 1e-5,
            loss: 1e-6,
            grads: 5e-5,
            step1: 1e-3,
            losses3: 5e-5,
            step3: 0.3,
        },
    );
}

// ---------------------------------------------------------------------------------------------
// The whole trainer's gradients against finite differences of its own train-mode loss.

use resnet_wgpu::graph::arch::{BlockKind, Shortcut};

/// Mean softmax cross-entropy in f64 from the trainer's train-mode logits (f64 so that the loss
/// itself adds no rounding to the differences).
fn loss64(t: &CpuTrainer, input: &[f32], labels: &[usize]) -> f64 {
    let logits = t.train_logits(input, labels.len()).unwrap();
    let classes = logits.len() / labels.len();
    let rows = logits.chunks_exact(classes).zip(labels);
    let sum: f64 = rows
        .map(|(row, &l)| {
            let m = row.iter().fold(f64::MIN, |a, &b| a.max(b as f64));
            let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
            s.ln() + m - row[l] as f64
        })
        .sum();
    sum / labels.len() as f64
}

/// Checks the trainer's gradient g of every parameter tensor against central differences of
/// the train-mode loss along two directions of unit length: g itself (the difference must be
/// |g|) and a random one d (it must be g . d). Directions rather than single elements because
/// these tiny nets are full of ReLU kinks: a single-element difference small enough not to
/// cross one drowns in the f32 rounding of the forward pass (measured: errors of 1-4% of the
/// largest gradient whatever the step), while along a direction every element adds to the
/// signal. Returns the worst error relative to |g|.
fn check_trainer_gradients(what: &str, g: &Graph, batch: usize, tol: f64) -> f64 {
    let n: usize = g.input_shape().iter().product::<usize>() * batch;
    let input = resnet_wgpu::tensor::SplitMix64(11).normal_vec(n, 1.0);
    let labels: Vec<usize> = (0..batch).map(|i| (i * 7 + 1) % 10).collect();
    let out = CpuTrainer::new(g.clone(), Hyper::default()).step(&input, &labels, batch);
    let params = state_dict::params(g);
    assert_eq!(out.grads.len(), params.len());
    let mut rng = resnet_wgpu::tensor::SplitMix64(13);
    let h = 3e-4f64;
    let mut worst = 0.0f64;
    for (p, (name, grad)) in params.iter().zip(&out.grads) {
        assert_eq!(&p.name, name);
        let norm = grad
            .data
            .iter()
            .map(|&v| (v as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!(norm > 0.0, "{what} {name}: a zero gradient checks nothing");
        let random = rng.normal_vec(grad.numel(), 1.0);
        let rnorm = random
            .iter()
            .map(|&v| (v as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        for (label, dir, dnorm) in [("along g", &grad.data, norm), ("random", &random, rnorm)] {
            let loss_at = |t: f64| {
                let mut gp = g.clone();
                let w = state_dict::param_data_mut(&mut gp, p);
                for (w, &d) in w.iter_mut().zip(dir.iter()) {
                    *w = (*w as f64 + t * d as f64 / dnorm) as f32;
                }
                loss64(&CpuTrainer::new(gp, Hyper::default()), &input, &labels)
            };
            let fd = (loss_at(h) - loss_at(-h)) / (2.0 * h);
            let analytic = dot(&grad.data, dir) / dnorm;
            let err = (fd - analytic).abs() / norm;
            if err > tol / 10.0 {
                eprintln!(
                    "  {what} {name} {label}: difference {fd:.5e}, trainer {analytic:.5e}, {err:.2e} of |g| {norm:.2e}"
                );
            }
            assert!(
                err <= tol,
                "{what} {name} {label}: difference {fd:.5e}, trainer {analytic:.5e}, {err:.2e} of |g| {norm:.2e}"
            );
            worst = worst.max(err);
        }
    }
    eprintln!(
        "{what}: {} tensors, worst error {worst:.2e} of |g|",
        params.len()
    );
    worst
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

// Tolerances, relative to |g|, from the worst error measured over every tensor (step 3e-4; 1e-3
// and 1e-4 gave the same within a factor 2, so this is the kinks' and rounding's floor, not
// truncation): option A 4.2e-3, bottleneck option B 2.8e-3, plain 4.5e-2. The plain net has a
// ReLU after every conv and no identity path, so its loss is the roughest (12x12 and 16x16
// inputs measured 1.6e-2 and 2.2e-2); any structural error (a missed gradient sum, a dropped
// batch-norm term) is of order 1.
#[test]
fn trainer_gradients_match_finite_differences_on_tiny_nets() {
    let cifar = [4, 8, 16];
    let g = common::one_block_net(7, false, BlockKind::Basic, Shortcut::A, &cifar, [3, 8, 8]);
    check_trainer_gradients("cifar 4/8/16 option A", &g, 3, 2e-2);
    let g = common::one_block_net(
        7,
        false,
        BlockKind::Basic,
        Shortcut::Plain,
        &cifar,
        [3, 8, 8],
    );
    check_trainer_gradients("cifar 4/8/16 plain", &g, 3, 0.1);
    // 7x7/2 stem, 3x3/2 max pool with padding, bottlenecks with 1x1 projections (stride 2 on an
    // odd map), on an odd 19x19 input.
    let g = common::one_block_net(
        7,
        true,
        BlockKind::Bottleneck,
        Shortcut::B,
        &[2, 3],
        [3, 19, 19],
    );
    check_trainer_gradients("imagenet bottleneck 2/3 option B", &g, 2, 2e-2);
}

#[test]
fn the_trainer_refuses_bad_input_with_typed_errors() {
    let g = common::one_block_net(
        7,
        false,
        BlockKind::Basic,
        Shortcut::A,
        &[4, 8, 16],
        [3, 8, 8],
    );
    let fused = resnet_wgpu::graph::fuse::optimize(g.clone());
    let err = CpuTrainer::try_new(fused, Hyper::default())
        .err()
        .expect("a fused graph");
    assert_eq!(err.kind(), "Unsupported", "{err}");
    let mut t = CpuTrainer::try_new(g, Hyper::default()).unwrap();
    let input = vec![0.5f32; 2 * 3 * 64];
    let cases: [(&[f32], &[usize], usize); 4] = [
        (&input[1..], &[0, 1], 2),
        (&input, &[0], 2),
        (&input, &[0, 10], 2),
        (&[], &[], 0),
    ];
    for (x, labels, batch) in cases {
        let err = t.try_step(x, labels, batch).err().expect("refused");
        assert_eq!(err.kind(), "InvalidInput", "{err}");
    }
    // Nothing was updated by the refused steps.
    assert_eq!(t.steps, 0);
    assert!(t.velocity.iter().flatten().all(|&v| v == 0.0));
    // One image whose last batch norm sees a 1x1 map: one value per channel has no unbiased
    // variance (PyTorch refuses it too).
    let g = common::one_block_net(
        7,
        false,
        BlockKind::Basic,
        Shortcut::A,
        &[4, 8, 16],
        [3, 4, 4],
    );
    let mut t = CpuTrainer::new(g, Hyper::default());
    let err = t.try_step(&[0.5; 48], &[3], 1).err().expect("refused");
    assert_eq!(err.kind(), "InvalidInput", "{err}");
    assert!(t.try_step(&[0.5; 96], &[3, 4], 2).is_ok());
}
