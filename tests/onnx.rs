//! The ONNX loader: the reference fixtures against ONNX Runtime / PyTorch logits, small graphs
//! for each exporter's conventions (built here with the protobuf types, no Python), and errors.

mod common;

use common::{check_close, gpu, local_fixture, npy, resnet18_fixture};
use resnet_wgpu::{Session, SessionOptions, model};
use std::path::Path;

/// Runs an ONNX model file on an input .npy; returns the max error vs the reference.
fn run_onnx_file(model_path: &Path, input: &Path, want: &Path) -> f32 {
    let model = model::load_file(model_path, None).unwrap();
    run_onnx_model(&model, &npy(input), want)
}

/// Runs a loaded ONNX model on an input; returns the max error vs the reference.
fn run_onnx_model(model: &Model, input: &resnet_wgpu::Tensor, want_path: &Path) -> f32 {
    let model_path = Path::new(&model.source);
    let [n, c, h, w] = input.shape[..] else {
        panic!("input is not NCHW")
    };
    let graph = model.graph_for([c, h, w]).unwrap();
    let session = Session::new(
        gpu(),
        graph.clone(),
        &SessionOptions {
            batch: n,
            ..Default::default()
        },
    )
    .unwrap();
    let got = session.run(&input.data).unwrap().logits;
    let want = npy(want_path);
    let err = check_close(&got, &want.data, 1e-3, 0.0)
        .unwrap_or_else(|e| panic!("{}: {e}", model_path.display()));
    eprintln!(
        "{}: max |logit error| = {err:.2e}",
        model_path.file_name().unwrap().to_string_lossy()
    );
    err
}

#[test]
fn resnet20_fixture_onnx_matches_onnx_runtime() {
    let dir = local_fixture("resnet20");
    run_onnx_file(
        &dir.join("resnet20.onnx"),
        &dir.join("resnet20.input.npy"),
        &dir.join("resnet20.logits_ort.npy"),
    );
}

/// The very graph ONNX Runtime ran for the ResNet-18 fixture (tests/fixtures/resnet18/
/// resnet18.graph.onnx), its initializers supplied as external data from the seeded generator.
#[test]
fn resnet18_fixture_onnx_matches_onnx_runtime() {
    let dir = local_fixture("resnet18");
    let (seeded, input) = resnet18_fixture();
    let resnet_wgpu::model::Network::Arch { weights, .. } = &seeded.network else {
        unreachable!()
    };
    let files = weights
        .iter()
        .map(|(k, t)| {
            let bytes = t.data.iter().flat_map(|v| v.to_le_bytes()).collect();
            (format!("{k}.bin"), bytes)
        })
        .collect();
    let bytes = std::fs::read(dir.join("resnet18.graph.onnx")).unwrap();
    let model = resnet_wgpu::model::onnx::load(
        &bytes,
        "resnet18.graph.onnx",
        &resnet_wgpu::model::onnx::ExternalFiles(files),
    )
    .unwrap();
    run_onnx_model(&model, &input, &dir.join("resnet18.logits_ort.npy"));
}

#[test]
fn fmnist_torch_export_matches_pytorch() {
    let dir = local_fixture("default_model");
    run_onnx_file(
        &dir.join("resnet20_fmnist.onnx"),
        &dir.join("foolbox_fmnist.input.npy"),
        &dir.join("foolbox_fmnist.logits_torch.npy"),
    );
}

// ---------------------------------------------------------------------------------------------
// Small graphs in each exporter's style, built here, checked against the CPU reference of the
// graph our IR should get.

#[path = "onnx/builder.rs"]
mod builder;

use builder::{Batch, Encoding, Net, Onnx, V, float, int, ints, string, tensor_attr};
use resnet_wgpu::graph::Graph;
use resnet_wgpu::model::Model;
use resnet_wgpu::model::onnx::proto::{NodeProto, TensorProto};
use resnet_wgpu::reference;
use resnet_wgpu::tensor::SplitMix64;

/// Loads `model`'s graph, runs it on the GPU (optimised, as the CLI does) and on the CPU
/// reference, and compares both with the reference run of `expected`. Returns the max error.
fn check_model(model: &Model, expected: &Graph, batch: usize) -> f32 {
    let graph = model
        .clone()
        .into_graph()
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(graph.input_shape(), expected.input_shape());
    let per_image: usize = graph.input_shape().iter().product();
    let input = SplitMix64(7).normal_vec(batch * per_image, 1.0);
    let want = &reference::run_graph(expected, &input, batch)[expected.output];
    let cpu = &reference::run_graph(&graph, &input, batch)[graph.output];
    check_close(cpu, want, 1e-5, 1e-5)
        .unwrap_or_else(|e| panic!("CPU reference of the import: {e}"));
    let got = common::run_gpu(&graph, &input, batch, true);
    check_close(&got, want, 1e-4, 5e-4).unwrap_or_else(|e| panic!("GPU: {e}"))
}

fn check_bytes(bytes: &[u8], expected: &Graph, batch: usize) -> f32 {
    let model = model::load_bytes(bytes, "test.onnx", None).unwrap_or_else(|e| panic!("{e:#}"));
    check_model(&model, expected, batch)
}

/// A basic block (two 3x3 convs + BN), with a 1x1 conv + BN projection where the shape changes.
fn basic_block(net: &mut Net, x: &V, out: usize, stride: usize) -> V {
    let y = net.conv(x, out, 3, stride, 1, false);
    let y = net.bn(&y);
    let y = net.relu(&y);
    let y = net.conv(&y, out, 3, 1, 1, false);
    let y = net.bn(&y);
    let sc = if stride != 1 || net.channels(x) != out {
        let s = net.conv(x, out, 1, stride, 0, false);
        net.bn(&s)
    } else {
        x.clone()
    };
    let s = net.add(&y, &sc);
    net.relu(&s)
}

/// What torch.onnx's legacy exporter writes for a torchvision ResNet: Conv + BatchNormalization
/// + Relu, MaxPool, Add, GlobalAveragePool, Flatten, Gemm(transB 1).
fn legacy_resnet(opset: i64, batch: Batch, encoding: Encoding) -> (Net, V) {
    let (mut net, x) = Net::new(opset, batch, [3, 20, 20]);
    net.onnx.encoding = encoding;
    let x = net.conv(&x, 8, 3, 2, 1, false);
    let x = net.bn(&x);
    let x = net.relu(&x);
    let x = net.max_pool(&x, 3, 2, 1);
    let x = basic_block(&mut net, &x, 8, 1);
    let x = basic_block(&mut net, &x, 16, 2);
    let x = net.global_avg_pool(&x);
    let x = net.flatten(&x);
    let x = net.gemm(&x, 10, true);
    (net, x)
}

#[test]
fn torch_legacy_export_loads_at_every_opset() {
    for opset in [9, 11, 13, 17, 21] {
        let (mut net, out) = legacy_resnet(opset, Batch::Symbolic, Encoding::RawData);
        let bytes = net.finish(&out);
        let err = check_bytes(&bytes, &net.g, 2);
        eprintln!("legacy export, opset {opset}: max error {err:.2e}");
    }
}

#[test]
fn torch_dynamo_export_with_folded_bn_reducemean_and_matmul() {
    let (mut net, x) = Net::new(18, Batch::Fixed(1), [3, 16, 16]);
    let x = net.conv(&x, 8, 3, 1, 1, true);
    let x = net.relu(&x);
    let x = net.max_pool(&x, 2, 2, 0);
    let y = net.conv(&x, 16, 3, 2, 1, true);
    let y = net.relu(&y);
    let y = net.conv(&y, 16, 3, 1, 1, true);
    let sc = net.conv(&x, 16, 1, 2, 0, true);
    let x = net.add(&y, &sc);
    let x = net.relu(&x);
    // Head: ReduceMean over H, W with the axes as an input (opset 18), Reshape, MatMul + Add.
    let axes = net.onnx.i64s("axes", &[-1, -2]);
    let mean = net
        .onnx
        .node("ReduceMean", &[&x.name, &axes], vec![int("keepdims", 1)]);
    let pooled = net.g.global_avg_pool(&mean, x.id);
    let shape = net.onnx.i64s("shape", &[1, 16]);
    let flat = net.onnx.node("Reshape", &[&mean, &shape], vec![]);
    let w = net.rng.normal_vec(10 * 16, 0.25);
    let b = net.rng.normal_vec(10, 0.1);
    let wt: Vec<f32> = (0..16 * 10).map(|i| w[(i % 10) * 16 + i / 10]).collect();
    let wt_name = net.onnx.f32("fc_wt", &[16, 10], &wt);
    let b_name = net.onnx.f32("fc_b", &[10], &b);
    let mm = net.onnx.node("MatMul", &[&flat, &wt_name], vec![]);
    let logits = net.onnx.node("Add", &[&mm, &b_name], vec![]);
    let lin = resnet_wgpu::graph::Linear {
        weight: resnet_wgpu::Tensor::new(vec![10, 16], w).unwrap(),
        bias: Some(b),
    };
    let id = net.g.linear(&logits, pooled, lin).unwrap();
    let bytes = net.finish(&V { name: logits, id });
    // The file says batch 1; any batch runs.
    check_bytes(&bytes, &net.g, 3);
}

/// A bottleneck with the stride on the first 1x1 (the original paper's v1, the ONNX model zoo's
/// resnet*-v1), every conv with a bias.
fn bottleneck_v1(net: &mut Net, x: &V, mid: usize, out: usize, stride: usize) -> V {
    let y = net.conv(x, mid, 1, stride, 0, true);
    let y = net.bn(&y);
    let y = net.relu(&y);
    let y = net.conv(&y, mid, 3, 1, 1, true);
    let y = net.bn(&y);
    let y = net.relu(&y);
    let y = net.conv(&y, out, 1, 1, 0, true);
    let y = net.bn(&y);
    let sc = if stride != 1 || net.channels(x) != out {
        let s = net.conv(x, out, 1, stride, 0, true);
        net.bn(&s)
    } else {
        x.clone()
    };
    let s = net.add(&y, &sc);
    net.relu(&s)
}

#[test]
fn onnx_zoo_v1_with_conv_bias_dropout_and_softmax() {
    // Zoo files are opset 7, IR version 3, with the initializers also listed as graph inputs.
    let (mut net, x) = Net::new(7, Batch::Fixed(1), [3, 16, 16]);
    net.onnx.inits_as_inputs = true;
    let x = net.conv(&x, 8, 3, 1, 1, true);
    let x = net.bn(&x);
    let x = net.relu(&x);
    let x = net.max_pool(&x, 3, 2, 1);
    let x = bottleneck_v1(&mut net, &x, 4, 16, 2);
    let x = bottleneck_v1(&mut net, &x, 4, 16, 1);
    let x = net.global_avg_pool(&x);
    let shape = net.onnx.i64s("shape", &[0, -1]);
    let flat = net.onnx.node("Reshape", &[&x.name, &shape], vec![]);
    // Dropout with its (unused) mask output.
    let dropped = net
        .onnx
        .node_n("Dropout", &[&flat], vec![float("ratio", 0.5)], 2);
    let x = net.gemm(
        &V {
            name: dropped[0].clone(),
            id: x.id,
        },
        10,
        true,
    );
    let x = net.softmax(&x, 1);
    let bytes = net.finish(&x);
    check_bytes(&bytes, &net.g, 2);
}

#[test]
fn onnx_zoo_v2_pre_activation_uses_standalone_batch_norm() {
    let (mut net, x) = Net::new(9, Batch::Fixed(1), [3, 16, 16]);
    let x = net.bn(&x); // the zoo's v2 normalises the data with a BN first
    let x = net.conv(&x, 8, 3, 1, 1, false);
    // Identity block: BN + ReLU before each conv.
    let t = net.bn(&x);
    let t = net.relu(&t);
    let y = net.conv(&t, 8, 3, 1, 1, false);
    let y = net.bn(&y);
    let y = net.relu(&y);
    let y = net.conv(&y, 8, 3, 1, 1, false);
    let x = net.add(&y, &x);
    // Transition block: the pre-activation feeds both the conv and the projection.
    let t = net.bn(&x);
    let t = net.relu(&t);
    let y = net.conv(&t, 16, 3, 2, 1, false);
    let y = net.bn(&y);
    let y = net.relu(&y);
    let y = net.conv(&y, 16, 3, 1, 1, false);
    let sc = net.conv(&t, 16, 1, 2, 0, false);
    let x = net.add(&y, &sc);
    let x = net.bn(&x);
    let x = net.relu(&x);
    let x = net.global_avg_pool(&x);
    let x = net.flatten(&x);
    let x = net.gemm(&x, 10, true);
    let bytes = net.finish(&x);
    check_bytes(&bytes, &net.g, 2);
    let graph = model::load_bytes(&bytes, "v2.onnx", None)
        .unwrap()
        .into_graph()
        .unwrap();
    let optimized = resnet_wgpu::graph::fuse::optimize(graph.clone());
    let standalone = optimized
        .nodes
        .iter()
        .filter(|n| n.op.kind() == "batchnorm")
        .count();
    assert!(standalone >= 4, "pre-activation BNs must stay standalone");
}

/// A CIFAR stem and one option-A downsampling block; `shortcut` writes the ONNX for the
/// subsample + channel pad of `x` and returns its name.
fn option_a_net(
    opset: i64,
    shortcut: impl FnOnce(&mut Onnx, &str) -> String,
    pad_before: usize,
    trans_b: bool,
) -> (Vec<u8>, Graph) {
    let (mut net, x) = Net::new(opset, Batch::Symbolic, [3, 12, 12]);
    let x = net.conv(&x, 4, 3, 1, 1, false);
    let x = net.bn(&x);
    let x = net.relu(&x);
    let y = net.conv(&x, 8, 3, 2, 1, false);
    let y = net.bn(&y);
    let y = net.relu(&y);
    let y = net.conv(&y, 8, 3, 1, 1, false);
    let y = net.bn(&y);
    let sc_name = shortcut(&mut net.onnx, &x.name);
    let sc_id = net
        .g
        .shortcut_a_padded(&sc_name, x.id, 2, pad_before, 8)
        .unwrap();
    let s = net.add(
        &y,
        &V {
            name: sc_name,
            id: sc_id,
        },
    );
    let x = net.relu(&s);
    let x = net.global_avg_pool(&x);
    let x = net.flatten(&x);
    let x = net.gemm(&x, 10, trans_b);
    let bytes = net.finish(&x);
    (bytes, net.g)
}

#[test]
fn opset9_attribute_forms_option_a_with_gather_and_pad_attributes() {
    // Opset 9 Slice has no steps: exporters subsample with Gather; Slice and Pad take
    // attributes. The pad here is uneven (1 channel before, 3 after), and the fc is Gemm with
    // transB 0.
    let (bytes, g) = option_a_net(
        9,
        |o, x| {
            let all = o.node(
                "Slice",
                &[x],
                vec![
                    ints("starts", &[0]),
                    ints("ends", &[i64::MAX]),
                    ints("axes", &[1]),
                ],
            );
            let idx = o.i64s("idx", &[0, 2, 4, 6, 8, 10]);
            let rows = o.node("Gather", &[&all, &idx], vec![int("axis", 2)]);
            let cols = o.node("Gather", &[&rows, &idx], vec![int("axis", 3)]);
            o.node(
                "Pad",
                &[&cols],
                vec![
                    string("mode", "constant"),
                    ints("pads", &[0, 1, 0, 0, 0, 3, 0, 0]),
                    float("value", 0.0),
                ],
            )
        },
        1,
        false,
    );
    check_bytes(&bytes, &g, 2);
}

#[test]
fn option_a_slice_steps_and_pad_forms_at_opsets_10_to_21() {
    for opset in [10, 11, 13, 18, 21] {
        let (bytes, g) = option_a_net(
            opset,
            |o, x| {
                let starts = o.constant_i64(&[0, 0]);
                let ends = o.constant_i64(&[i64::MAX, i64::MAX]);
                let axes = o.constant_i64(&[2, 3]);
                let steps = o.constant_i64(&[2, 2]);
                let sub = o.node("Slice", &[x, &starts, &ends, &axes, &steps], vec![]);
                if opset == 10 {
                    return o.node(
                        "Pad",
                        &[&sub],
                        vec![ints("pads", &[0, 2, 0, 0, 0, 2, 0, 0])],
                    );
                }
                if opset >= 18 {
                    // Pad's axes input: pads given for the channel axis only.
                    let pads = o.constant_i64(&[2, 2]);
                    let axes = o.constant_i64(&[1]);
                    let zero = o.f32("zero", &[], &[0.0]);
                    return o.node("Pad", &[&sub, &pads, &zero, &axes], vec![]);
                }
                let pads = o.i64s("pads", &[0, 2, 0, 0, 0, 2, 0, 0]);
                o.node("Pad", &[&sub, &pads], vec![string("mode", "constant")])
            },
            2,
            true,
        );
        check_bytes(&bytes, &g, 2);
    }
}

#[test]
fn explicit_zero_pad_same_auto_pad_ceil_mode_and_average_pool() {
    let (mut net, x) = Net::new(13, Batch::Symbolic, [3, 12, 12]);
    // TF-style: Pad(0) of H, W then a Conv without pads.
    let w = net.rng.normal_vec(8 * 3 * 9, 0.3);
    let pads = net.onnx.i64s("pads", &[0, 0, 1, 1, 0, 0, 1, 1]);
    let padded = net.onnx.node("Pad", &[&x.name, &pads], vec![]);
    let wn = net.onnx.f32("w", &[8, 3, 3, 3], &w);
    let conv = net
        .onnx
        .node("Conv", &[&padded, &wn], vec![ints("strides", &[1, 1])]);
    let c = resnet_wgpu::graph::Conv {
        weight: resnet_wgpu::Tensor::new(vec![8, 3, 3, 3], w).unwrap(),
        bias: None,
        stride: [1, 1],
        pad: [1; 4],
        relu: false,
    };
    let id = net.g.conv(&conv, x.id, c).unwrap();
    let x = V { name: conv, id };
    // SAME_UPPER with stride 2 on 12x12: 6x6 out, the one extra row and column at the end.
    let w = net.rng.normal_vec(8 * 8 * 9, 0.2);
    let wn = net.onnx.f32("w", &[8, 8, 3, 3], &w);
    let conv = net.onnx.node(
        "Conv",
        &[&x.name, &wn],
        vec![string("auto_pad", "SAME_UPPER"), ints("strides", &[2, 2])],
    );
    let c = resnet_wgpu::graph::Conv {
        weight: resnet_wgpu::Tensor::new(vec![8, 8, 3, 3], w).unwrap(),
        bias: None,
        stride: [2, 2],
        pad: [0, 0, 1, 1],
        relu: false,
    };
    let id = net.g.conv(&conv, x.id, c).unwrap();
    let x = V { name: conv, id };
    let x = net.relu(&x);
    // MaxPool with ceil_mode: 6x6, kernel 3, stride 2 gives 3x3 (floor would give 2x2), the
    // last window reaching one past the edge: the same as one row / column of -inf padding.
    let pool = net.onnx.node(
        "MaxPool",
        &[&x.name],
        vec![
            ints("kernel_shape", &[3, 3]),
            ints("strides", &[2, 2]),
            int("ceil_mode", 1),
        ],
    );
    let p = resnet_wgpu::graph::MaxPool {
        kernel: [3, 3],
        stride: [2, 2],
        pad: [0, 0, 1, 1],
    };
    let id = net.g.max_pool(&pool, x.id, p).unwrap();
    assert_eq!(net.g.shape(id), [8, 3, 3]);
    // AveragePool over the whole image, as Keras exports write the global pool.
    let avg = net
        .onnx
        .node("AveragePool", &[&pool], vec![ints("kernel_shape", &[3, 3])]);
    let id = net.g.global_avg_pool(&avg, id);
    let bytes = net.finish(&V { name: avg, id });
    check_bytes(&bytes, &net.g, 2);
}

#[test]
fn symbolic_batch_and_shape_subgraph_reshape() {
    for batch in [Batch::Symbolic, Batch::Unknown, Batch::Fixed(1)] {
        let (mut net, x) = Net::new(13, batch, [3, 8, 8]);
        let x = net.conv(&x, 8, 3, 1, 1, false);
        let x = net.bn(&x);
        let x = net.relu(&x);
        let x = net.global_avg_pool(&x);
        // x.view(x.size(0), -1) as the legacy exporter writes it.
        let shape = net.onnx.node("Shape", &[&x.name], vec![]);
        let zero = net.onnx.node(
            "Constant",
            &[],
            vec![tensor_attr(
                "value",
                TensorProto {
                    dims: vec![],
                    data_type: Some(7),
                    int64_data: vec![0],
                    ..Default::default()
                },
            )],
        );
        let n = net
            .onnx
            .node("Gather", &[&shape, &zero], vec![int("axis", 0)]);
        let axes = net.onnx.constant_i64(&[0]);
        let n1 = net.onnx.node("Unsqueeze", &[&n, &axes], vec![]);
        let minus1 = net.onnx.constant_i64(&[-1]);
        let target = net
            .onnx
            .node("Concat", &[&n1, &minus1], vec![int("axis", 0)]);
        let flat = net.onnx.node("Reshape", &[&x.name, &target], vec![]);
        let x = net.gemm(
            &V {
                name: flat,
                id: x.id,
            },
            10,
            true,
        );
        let bytes = net.finish(&x);
        check_bytes(&bytes, &net.g, 3);
    }
}

#[test]
fn initializers_as_raw_data_float_data_and_double_data_agree() {
    for encoding in [Encoding::RawData, Encoding::FloatData, Encoding::DoubleData] {
        let (mut net, out) = legacy_resnet(13, Batch::Symbolic, encoding);
        let bytes = net.finish(&out);
        check_bytes(&bytes, &net.g, 2);
    }
}

/// A fresh folder for files a test writes.
fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("resnet-wgpu-onnx-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn external_data_is_read_beside_the_model_file() {
    let (mut net, out) = legacy_resnet(13, Batch::Symbolic, Encoding::External);
    let bytes = net.finish(&out);
    let dir = temp_dir("external");
    let path = dir.join("model.onnx");
    std::fs::write(&path, &bytes).unwrap();
    std::fs::write(dir.join("weights.bin"), &net.onnx.external).unwrap();
    let model = model::load_file(&path, None).unwrap_or_else(|e| panic!("{e:#}"));
    check_model(&model, &net.g, 2);

    // From memory, as the web demo would give them.
    let files = [("weights.bin".to_string(), net.onnx.external.clone())];
    let external = resnet_wgpu::model::onnx::ExternalFiles(files.into_iter().collect());
    let model = resnet_wgpu::model::onnx::load(&bytes, "model.onnx", &external).unwrap();
    check_model(&model, &net.g, 1);

    // From bytes alone the external file cannot be found: a clear error.
    let e = format!(
        "{:#}",
        model::load_bytes(&bytes, "model.onnx", None).unwrap_err()
    );
    assert!(
        e.starts_with("model.onnx: ") && e.contains("weights.bin"),
        "{e}"
    );
    assert!(e.contains("load it from its file"), "{e}");

    // A truncated data file is refused before anything is allocated from its claims.
    let half = &net.onnx.external[..net.onnx.external.len() / 2];
    std::fs::write(dir.join("weights.bin"), half).unwrap();
    let e = format!("{:#}", model::load_file(&path, None).unwrap_err());
    assert!(e.contains("weights.bin") && e.contains("bytes"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();

    // Locations outside the model's folder are refused.
    let (mut net, out) = {
        let (mut net, x) = Net::new(13, Batch::Symbolic, [3, 4, 4]);
        net.onnx.encoding = Encoding::External;
        net.onnx.external_name = "../secret.bin".into();
        let x = net.conv(&x, 4, 3, 1, 1, false);
        (net, x)
    };
    let bytes = net.finish(&out);
    let dir = temp_dir("escape");
    let path = dir.join("model.onnx");
    std::fs::write(&path, &bytes).unwrap();
    let e = format!("{:#}", model::load_file(&path, None).unwrap_err());
    assert!(e.contains("inside the model's folder"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Errors: one line, starting with the file name, never a panic.

fn load_err(bytes: &[u8]) -> String {
    let e = model::load_bytes(bytes, "bad.onnx", None).unwrap_err();
    let msg = format!("{e:#}");
    assert!(msg.starts_with("bad.onnx: "), "{msg}");
    assert!(!msg.contains('\n'), "{msg}");
    eprintln!("{msg}");
    msg
}

fn raw_node(name: &str, op: &str, inputs: &[&str], outputs: &[&str]) -> NodeProto {
    NodeProto {
        name: Some(name.into()),
        op_type: Some(op.into()),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

#[test]
fn truncated_and_garbage_files_are_refused() {
    let good = std::fs::read(local_fixture("resnet20/resnet20.onnx")).unwrap();
    for cut in [10, 1000, good.len() / 2, good.len() - 3] {
        load_err(&good[..cut]);
    }
    load_err(b"");
    // Content sniffing: an ONNX file without the extension still loads as ONNX.
    let m = model::load_bytes(&good, "model.bin", None).unwrap();
    assert_eq!(m.input_shape(), [3, 32, 32]);
    load_err(b"definitely not a protobuf \xff\xff\xff\xff\xff");
    let mut rng = SplitMix64(3);
    let noise: Vec<u8> = (0..4096).map(|_| rng.next_u64() as u8).collect();
    load_err(&noise);
}

#[test]
fn corrupted_files_never_panic() {
    let good = std::fs::read(local_fixture("resnet20/resnet20.onnx")).unwrap();
    let mut rng = SplitMix64(11);
    for _ in 0..200 {
        let mut bytes = good.clone();
        for _ in 0..1 + rng.next_u64() % 8 {
            let i = (rng.next_u64() % bytes.len() as u64) as usize;
            bytes[i] = rng.next_u64() as u8;
        }
        let _ = model::load_bytes(&bytes, "fuzz.onnx", None);
    }
}

#[test]
fn cycles_and_dangling_inputs_are_refused() {
    let mut o = Onnx::new(13, Batch::Symbolic, [3, 4, 4]);
    o.nodes.push(raw_node("first", "Relu", &["b"], &["a"]));
    o.nodes.push(raw_node("second", "Relu", &["a"], &["b"]));
    o.nodes
        .push(raw_node("last", "Add", &["b", "input"], &["out"]));
    let e = load_err(&o.bytes("out"));
    assert!(e.contains("cycle"), "{e}");

    let mut o = Onnx::new(13, Batch::Symbolic, [3, 4, 4]);
    o.nodes
        .push(raw_node("lonely", "Relu", &["nowhere"], &["out"]));
    let e = load_err(&o.bytes("out"));
    assert!(e.contains("'lonely'") && e.contains("'nowhere'"), "{e}");

    let mut o = Onnx::new(13, Batch::Symbolic, [3, 4, 4]);
    o.nodes.push(raw_node("r", "Relu", &["input"], &["out"]));
    let e = load_err(&o.bytes("missing_output"));
    assert!(e.contains("missing_output"), "{e}");
}

/// A one-conv model whose weight tensor is `w`.
fn conv_with_weight(w: TensorProto) -> Vec<u8> {
    let mut o = Onnx::new(13, Batch::Symbolic, [3, 8, 8]);
    o.inits.push(TensorProto {
        name: Some("w".into()),
        ..w
    });
    o.nodes
        .push(raw_node("conv", "Conv", &["input", "w"], &["out"]));
    o.bytes("out")
}

#[test]
fn initializers_that_disagree_with_their_shape_are_refused() {
    let e = load_err(&conv_with_weight(TensorProto {
        dims: vec![8, 3, 3, 3],
        data_type: Some(1),
        raw_data: Some(vec![0; 100]),
        ..Default::default()
    }));
    assert!(
        e.contains("initializer 'w'") && e.contains("100 bytes"),
        "{e}"
    );
    let e = load_err(&conv_with_weight(TensorProto {
        dims: vec![8, 3, 3, 3],
        data_type: Some(1),
        float_data: vec![1.0; 7],
        ..Default::default()
    }));
    assert!(e.contains("initializer 'w'"), "{e}");
    // An absurd claimed shape with almost no data: refused without trying to allocate it.
    let e = load_err(&conv_with_weight(TensorProto {
        dims: vec![1 << 40, 1 << 40, 3, 3],
        data_type: Some(1),
        raw_data: Some(vec![0; 8]),
        ..Default::default()
    }));
    assert!(e.contains("initializer 'w'"), "{e}");
    let e = load_err(&conv_with_weight(TensorProto {
        dims: vec![8, -3, 3, 3],
        data_type: Some(1),
        ..Default::default()
    }));
    assert!(e.contains("negative"), "{e}");
    let e = load_err(&conv_with_weight(TensorProto {
        dims: vec![1],
        data_type: Some(8),
        string_data: vec![b"x".to_vec()],
        ..Default::default()
    }));
    assert!(e.contains("STRING"), "{e}");
}

#[test]
fn unsupported_ops_and_attributes_name_the_node() {
    let mut o = Onnx::new(13, Batch::Symbolic, [3, 8, 8]);
    o.nodes.push(raw_node("rnn0", "LSTM", &["input"], &["out"]));
    let e = load_err(&o.bytes("out"));
    assert!(
        e.contains("node 'rnn0' (LSTM)") && e.contains("not supported"),
        "{e}"
    );

    let mut o = Onnx::new(13, Batch::Symbolic, [4, 8, 8]);
    let w = o.f32("w", &[4, 2, 3, 3], &[0.1; 72]);
    o.node("Conv", &["input", &w], vec![int("group", 2)]);
    let e = load_err(&o.bytes("conv_2.out0"));
    assert!(e.contains("(Conv)") && e.contains("group"), "{e}");

    let mut o = Onnx::new(13, Batch::Symbolic, [4, 8, 8]);
    let pads = o.i64s("pads", &[0, 0, 1, 1, 0, 0, 1, 1]);
    let p = o.node("Pad", &["input", &pads], vec![string("mode", "reflect")]);
    let e = load_err(&o.bytes(&p));
    assert!(e.contains("(Pad)") && e.contains("reflect"), "{e}");

    let mut o = Onnx::new(13, Batch::Symbolic, [4, 8, 8]);
    let p = o.node(
        "MaxPool",
        &["input"],
        vec![ints("kernel_shape", &[2, 2]), ints("dilations", &[2, 2])],
    );
    let e = load_err(&o.bytes(&p));
    assert!(e.contains("(MaxPool)") && e.contains("dilat"), "{e}");

    let mut o = Onnx::new(13, Batch::Symbolic, [4, 8, 8]);
    let p = o.node("Relu", &["input"], vec![int("bogus", 1)]);
    let e = load_err(&o.bytes(&p));
    assert!(e.contains("(Relu)") && e.contains("bogus"), "{e}");

    // A reshape into other image dims cannot feed a conv (our activations are NCHW).
    let mut o = Onnx::new(13, Batch::Symbolic, [4, 8, 8]);
    let shape = o.i64s("shape", &[0, 8, 4, 8]);
    let r = o.node("Reshape", &["input", &shape], vec![]);
    let w = o.f32("w", &[4, 8, 1, 1], &[0.1; 32]);
    let c = o.node("Conv", &[&r, &w], vec![]);
    let e = load_err(&o.bytes(&c));
    assert!(e.contains("(Conv)") && e.contains("NCHW"), "{e}");

    // Only the batch may be symbolic.
    let mut o = Onnx::new(13, Batch::Symbolic, [4, 8, 8]);
    let p = o.node("Relu", &["input"], vec![]);
    let mut m = o.model(&p);
    let input = &mut m.graph.as_mut().unwrap().input[0];
    let dims = match input.r#type.as_mut().unwrap().value.as_mut().unwrap() {
        resnet_wgpu::model::onnx::proto::type_proto::Value::TensorType(t) => {
            &mut t.shape.as_mut().unwrap().dim
        }
        _ => unreachable!(),
    };
    dims[2].value = Some(
        resnet_wgpu::model::onnx::proto::tensor_shape_proto::dimension::Value::DimParam("H".into()),
    );
    use resnet_wgpu::model::onnx::Message;
    let e = load_err(&m.encode_to_vec());
    assert!(e.contains("height"), "{e}");
}
