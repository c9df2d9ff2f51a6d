//! Every architecture of the paper runs on the GPU and matches the CPU reference (synthetic
//! weights, small inputs so the reference stays fast). Whole-network tolerance: atol 1e-3.

mod common;

use common::{check_close, gpu, run_gpu};
use resnet_wgpu::graph::params::SyntheticParams;
use resnet_wgpu::reference::run_graph;
use resnet_wgpu::tensor::SplitMix64;
use resnet_wgpu::{ArchSpec, Session, SessionOptions};

fn check_arch(name: &str, hw: usize, batch: usize) {
    let spec = ArchSpec::parse(name).unwrap();
    let g = spec
        .build(
            &mut SyntheticParams::new(11, spec.default_classes()),
            [3, hw, hw],
        )
        .unwrap();
    let x = SplitMix64(5).normal_vec(batch * 3 * hw * hw, 1.0);
    let want = run_graph(&g, &x, batch).swap_remove(g.output);
    let got = run_gpu(&g, &x, batch, true);
    let err = check_close(&got, &want, 1e-3, 1e-3)
        .unwrap_or_else(|e| panic!("{name} at {hw}x{hw}, batch {batch}: {e}"));
    let spread = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(
        spread > 1e-2,
        "{name}: degenerate logits, the comparison would prove nothing"
    );
    eprintln!("{name:<14} {hw}x{hw} batch {batch}: max error {err:.2e} (logits up to {spread:.2})");
}

#[test]
fn imagenet_basic_nets() {
    check_arch("resnet18", 64, 2);
    check_arch("resnet34", 48, 1);
    check_arch("resnet18-a", 40, 1);
    check_arch("plain-18", 64, 1);
}

#[test]
fn imagenet_bottleneck_nets() {
    check_arch("resnet50", 64, 2);
    check_arch("resnet50-v1", 57, 1);
    check_arch("resnet50-c", 32, 1);
    check_arch("resnet101-v1", 32, 1);
    check_arch("resnet152", 32, 1);
}

#[test]
fn cifar_nets_and_shortcut_options() {
    check_arch("resnet20", 32, 3);
    check_arch("resnet20-b", 32, 1);
    check_arch("resnet20-c", 31, 2);
    check_arch("plain-20", 32, 1);
    check_arch("resnet32", 32, 1);
    check_arch("resnet44", 32, 1);
    check_arch("resnet56", 32, 1);
    check_arch("resnet110", 32, 1);
}

#[test]
fn cifar_resnet1202() {
    check_arch("resnet1202", 32, 1);
}

#[test]
fn batches_larger_than_the_session_run_in_chunks() {
    let spec = ArchSpec::parse("resnet20").unwrap();
    let g = spec
        .build(&mut SyntheticParams::new(2, 10), [3, 32, 32])
        .unwrap();
    let x = SplitMix64(1).normal_vec(5 * 3 * 32 * 32, 1.0);
    let chunked = Session::new(
        gpu(),
        g.clone(),
        &SessionOptions {
            batch: 2,
            ..Default::default()
        },
    )
    .unwrap()
    .run(&x)
    .unwrap()
    .logits;
    let single = Session::new(gpu(), g.clone(), &SessionOptions::default())
        .unwrap()
        .run(&x)
        .unwrap()
        .logits;
    assert_eq!(chunked.len(), 50);
    check_close(&chunked, &single, 1e-5, 1e-5).unwrap();
    // The same session gives the same answer twice (no state leaks between runs).
    let session = Session::new(
        gpu(),
        g.clone(),
        &SessionOptions {
            batch: 5,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        session.run(&x).unwrap().logits,
        session.run(&x).unwrap().logits
    );
}

#[test]
fn a_session_refuses_input_of_the_wrong_size() {
    let spec = ArchSpec::parse("resnet20").unwrap();
    let g = spec
        .build(&mut SyntheticParams::new(2, 10), [3, 32, 32])
        .unwrap();
    let session = Session::new(gpu(), g.clone(), &SessionOptions::default()).unwrap();
    let e = session.run(&[0.0; 100]).unwrap_err().to_string();
    assert!(e.contains("not a whole number"), "{e}");
    assert!(session.run(&[]).is_err());
}
