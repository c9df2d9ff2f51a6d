//! Timing convolution candidates on a synthetic layer of one shape.
//!
//! Every candidate runs the same layer (seeded weights, bias, ReLU, the shape's input) into the
//! same output buffer. Its first run is read back and compared with the first candidate's (the
//! default table's choice): a kernel whose output disagrees (a driver that miscompiles it) is
//! rejected, never chosen. Then it is timed: with GPU timestamps at the start and end of one
//! compute pass holding `reps` back-to-back launches where the adapter has TIMESTAMP_QUERY, else
//! by the wall time from submit until a read-back completes (what a browser without timestamps
//! gives). `reps` is sized so that one sample lasts about 2 ms (quick) or 10 ms (full), which
//! hides launch and submit overhead on fast GPUs; the median of 3 (quick) or 5 (full) samples
//! counts. A candidate whose first run is 3x slower than the best so far is not sampled further.

use crate::error::{Error, Result};
use crate::gpu::{Dispatch, GpuContext, read_buffer};
use crate::graph::Conv;
use crate::layout::blocked_len;
use crate::ops::Io;
use crate::plan::Tune;
use crate::plan::conv::{ConvAlgo, ConvShape, scratch_bytes};
use crate::precision::Precision;
use crate::tensor::{SplitMix64, Tensor};
use web_time::Instant;
use wgpu::util::DeviceExt;

/// The candidates measured: those that agreed with the first, fastest first, and those that did
/// not (or that the GPU refused), and whether every candidate was measured before the deadline.
pub struct Measured {
    pub timings: Vec<(ConvAlgo, f64)>,
    pub rejected: Vec<ConvAlgo>,
    pub complete: bool,
}

impl Measured {
    /// Seconds per run of the fastest (0 if none ran).
    pub fn best_seconds(&self) -> f64 {
        self.timings.first().map_or(0.0, |t| t.1)
    }
}

/// How candidates are timed on `ctx`.
pub fn timer_name(ctx: &GpuContext) -> &'static str {
    if has_timestamps(ctx) {
        "GPU timestamps"
    } else {
        "submit-and-wait wall time"
    }
}

fn has_timestamps(ctx: &GpuContext) -> bool {
    ctx.timestamps() != crate::gpu::Timestamps::None
}

/// A layer of shape `s` with seeded He-initialised weights (normal, std sqrt(2 / fan-in), so the
/// outputs stay near 1), a bias, and ReLU.
fn synthetic_conv(s: &ConvShape) -> Conv {
    let [kh, kw] = s.kernel;
    let oc = s.output[0];
    let mut rng = SplitMix64(0x9e37_79b9_7f4a_7c15);
    let std = (2.0 / (s.in_c * kh * kw) as f32).sqrt();
    Conv {
        weight: Tensor {
            shape: vec![oc, s.in_c, kh, kw],
            data: rng.normal_vec(oc * s.in_c * kh * kw, std),
        },
        bias: Some(rng.normal_vec(oc, 0.1)),
        stride: s.stride,
        pad: s.pad,
        relu: true,
    }
}

/// GPU buffers of one probe: input, output, and the pass timestamps.
struct Bench<'a> {
    ctx: &'a GpuContext,
    conv: Conv,
    shape: ConvShape,
    precision: Precision,
    input: wgpu::Buffer,
    output: wgpu::Buffer,
    output_bytes: u64,
    readback: wgpu::Buffer,
    timestamps: Option<(wgpu::QuerySet, wgpu::Buffer, wgpu::Buffer)>,
}

impl<'a> Bench<'a> {
    fn new(ctx: &'a GpuContext, shape: &ConvShape, precision: Precision) -> Self {
        let dev = &ctx.device;
        let input_len = shape.batch * blocked_len(shape.input);
        let data: Vec<f32> = (0..input_len)
            .map(|i| ((i * 7919) % 1000) as f32 / 1000.0 - 0.3)
            .collect();
        let input = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("tune input"),
            contents: bytemuck::cast_slice(&data),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let output_bytes = (shape.batch * blocked_len(shape.output)) as u64 * 4;
        let output = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tune output"),
            size: output_bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = dev.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tune read-back"),
            size: output_bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let timestamps = has_timestamps(ctx).then(|| {
            let set = dev.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("tune timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            });
            let resolve = dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tune timestamps resolve"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            });
            let read = dev.create_buffer(&wgpu::BufferDescriptor {
                label: Some("tune timestamps read-back"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            (set, resolve, read)
        });
        Self {
            ctx,
            conv: synthetic_conv(shape),
            shape: *shape,
            precision,
            input,
            output,
            output_bytes,
            readback,
            timestamps,
        }
    }

    /// The candidate's dispatches (and the temporaries they bind, kept alive with them).
    fn build(&self, algo: ConvAlgo) -> Result<(Vec<Dispatch>, Vec<wgpu::Buffer>)> {
        let scratch: Vec<wgpu::Buffer> = scratch_bytes(&algo, &self.shape)
            .into_iter()
            .map(|bytes| {
                self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("tune scratch"),
                    size: bytes.max(4).next_multiple_of(4),
                    usage: wgpu::BufferUsages::STORAGE,
                    mapped_at_creation: false,
                })
            })
            .collect();
        let io = Io {
            inputs: vec![&self.input],
            in_shapes: vec![self.shape.input],
            output: &self.output,
            batch: self.shape.batch,
            scratch: scratch.iter().collect(),
        };
        let dispatches = crate::ops::conv::build(
            self.ctx,
            "tune",
            &self.conv,
            self.shape.output,
            &io,
            algo,
            self.precision,
        )?;
        Ok((dispatches, scratch))
    }

    /// Runs the dispatches once and reads the output back.
    async fn output_of(&self, dispatches: &[Dispatch]) -> Result<Vec<f32>> {
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            for d in dispatches {
                d.record(&mut pass);
            }
        }
        encoder.copy_buffer_to_buffer(&self.output, 0, &self.readback, 0, self.output_bytes);
        self.ctx.queue.submit([encoder.finish()]);
        let bytes = read_buffer(self.ctx, &self.readback).await?;
        Ok(bytemuck::cast_slice(&bytes).to_vec())
    }

    /// Seconds per run of `reps` back-to-back runs in one pass.
    async fn time(&self, dispatches: &[Dispatch], reps: u32) -> Result<f64> {
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        {
            let timestamp_writes =
                self.timestamps
                    .as_ref()
                    .map(|(set, _, _)| wgpu::ComputePassTimestampWrites {
                        query_set: set,
                        beginning_of_pass_write_index: Some(0),
                        end_of_pass_write_index: Some(1),
                    });
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("tune"),
                timestamp_writes,
            });
            for _ in 0..reps {
                for d in dispatches {
                    d.record(&mut pass);
                }
            }
        }
        let start = Instant::now();
        match &self.timestamps {
            Some((set, resolve, read)) => {
                encoder.resolve_query_set(set, 0..2, resolve, 0);
                encoder.copy_buffer_to_buffer(resolve, 0, read, 0, 16);
                self.ctx.queue.submit([encoder.finish()]);
                let raw = read_buffer(self.ctx, read).await?;
                let ticks: &[u64] = bytemuck::cast_slice(&raw);
                let period = self.ctx.queue.get_timestamp_period() as f64 * 1e-9;
                Ok(ticks[1].saturating_sub(ticks[0]) as f64 * period / reps as f64)
            }
            None => {
                // A 4-byte read-back waits for the work (and costs next to nothing).
                encoder.copy_buffer_to_buffer(&self.output, 0, &self.readback, 0, 4);
                self.ctx.queue.submit([encoder.finish()]);
                read_buffer(self.ctx, &self.readback).await?;
                Ok(start.elapsed().as_secs_f64() / reps as f64)
            }
        }
    }
}

/// Whether `got` is the same layer output as `want`, within what the precision allows.
fn agrees(got: &[f32], want: &[f32], precision: Precision) -> bool {
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    let tol = match precision {
        Precision::F32 => 1e-3,
        Precision::F16 => 3e-2,
    } * scale;
    got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| (g - w).abs() <= tol && g.is_finite() == w.is_finite())
}

/// Measures `algos` (the first is the yardstick of correctness) on layer shape `s`, starting
/// no candidate after `deadline` but the first.
pub async fn time_candidates(
    ctx: &GpuContext,
    s: &ConvShape,
    precision: Precision,
    algos: &[ConvAlgo],
    mode: Tune,
    deadline: Option<Instant>,
) -> Result<Measured> {
    let (target, samples) = match mode {
        Tune::Full => (10e-3, 5),
        _ => (2e-3, 3),
    };
    let bench = Bench::new(ctx, s, precision);
    let mut want: Option<Vec<f32>> = None;
    let mut measured = Measured {
        timings: Vec::new(),
        rejected: Vec::new(),
        complete: true,
    };
    for (n, &algo) in algos.iter().enumerate() {
        if n > 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            measured.complete = false;
            break;
        }
        ctx.check_alive()?;
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let built = bench.build(algo);
        let result = match built {
            Ok((dispatches, _scratch)) => {
                let out = bench.output_of(&dispatches).await;
                match out {
                    Ok(out) => {
                        let first = bench.time(&dispatches, 1).await?;
                        Ok((dispatches, _scratch, out, first))
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        let refused = scope.pop().await;
        let (dispatches, _scratch, out, first) = match (result, refused) {
            (Ok(r), None) => r,
            (Err(e), _) if matches!(e, Error::DeviceLost { .. }) => return Err(e),
            (Err(e), _) => {
                log::warn!("tuning: {} cannot run: {e}", algo.describe());
                measured.rejected.push(algo);
                continue;
            }
            (_, Some(e)) => {
                ctx.check_alive()?;
                log::warn!("tuning: the GPU refused {}: {e}", algo.describe());
                measured.rejected.push(algo);
                continue;
            }
        };
        match &want {
            None => want = Some(out),
            Some(w) if !agrees(&out, w, precision) => {
                log::warn!(
                    "tuning: {} computes another result than {} on adapter '{}': never chosen",
                    algo.describe(),
                    algos[0].describe(),
                    ctx.info.name
                );
                measured.rejected.push(algo);
                continue;
            }
            Some(_) => {}
        }
        let best = measured.best_seconds();
        let seconds = if best > 0.0 && first > 3.0 * best {
            first
        } else {
            let reps = ((target / first.max(1e-7)).ceil() as u32).clamp(1, 100);
            let mut t = Vec::with_capacity(samples);
            for _ in 0..samples {
                t.push(bench.time(&dispatches, reps).await?);
            }
            t.sort_by(f64::total_cmp);
            t[t.len() / 2]
        };
        let at = measured
            .timings
            .partition_point(|&(_, other)| other <= seconds);
        measured.timings.insert(at, (algo, seconds));
    }
    Ok(measured)
}
