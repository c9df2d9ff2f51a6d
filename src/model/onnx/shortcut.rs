//! Slice, Gather and Pad of activations: the option-A shortcut (every k-th pixel, then zero
//! channels) and zero spatial padding that the next Conv absorbs. These only record a pending
//! step on the activation; `Importer::materialize` or the consumer carries it out.

use super::fold::{Range1, SliceParams};
use super::import::{Act, Importer, Pending, Val, act, cst, opt_cst};
use super::node::{NodeRef, norm_axis};
use anyhow::{Result, anyhow, bail, ensure};

impl Importer<'_> {
    /// Slice of an activation: only every k-th row / column of height and width from the start
    /// (the option-A shortcut's subsampling); channels and batch untouched.
    pub(super) fn slice(&mut self, n: &NodeRef, ins: &[Option<Val>]) -> Result<Val> {
        let a = act(ins, 0)?;
        let consts = (0..ins.len())
            .map(|i| {
                if i == 0 {
                    Ok(None)
                } else {
                    opt_cst(ins, i, "slice bounds")
                }
            })
            .collect::<Result<Vec<_>>>()?;
        let p = SliceParams::from_node(n, &consts)?;
        ensure!(
            a.dims.len() == 3,
            "Slice of per-image dims {:?} is not supported",
            a.dims
        );
        self.check_nchw(&a)?;
        let base = match a.pending {
            Pending::None => [1, 1],
            Pending::Subsample(s) => s,
            Pending::ZeroPad(_) => bail!("Slice after a zero Pad is not supported"),
        };
        // The batch is unknown: give it a size no real slice bound reaches.
        let huge = 1i64 << 40;
        let mut full = vec![huge as usize];
        full.extend(&a.dims);
        let ranges = p.ranges(&full)?;
        let whole = |r: &Range1, d: usize| r.start == 0 && r.step == 1 && r.count == d;
        ensure!(
            whole(&ranges[0], huge as usize) && whole(&ranges[1], a.dims[0]),
            "only slicing height and width is supported, not the batch or the channels"
        );
        let mut stride = base;
        let mut dims = a.dims.clone();
        for k in 0..2 {
            let (r, d) = (ranges[k + 2], a.dims[k + 1]);
            ensure!(
                r.start == 0 && r.step > 0 && r.count == d.div_ceil(r.step as usize),
                "only a Slice that keeps every k-th row or column from the first to the end is \
                 supported (axis {}: start {}, step {}, {} of {d})",
                k + 2,
                r.start,
                r.step,
                r.count
            );
            stride[k] *= r.step as usize;
            dims[k + 1] = r.count;
        }
        if stride == [1, 1] {
            return Ok(Val::Act(a));
        }
        Ok(Val::Act(Act {
            id: a.id,
            dims,
            pending: Pending::Subsample(stride),
            owner: None,
        }))
    }

    /// Gather of an activation along height or width with the indices 0, k, 2k, ... up to the
    /// end: the same subsampling as a Slice with step k (exporters without Slice steps write it
    /// this way).
    pub(super) fn gather(&mut self, n: &NodeRef, ins: &[Option<Val>]) -> Result<Val> {
        n.check_attrs(&["axis"])?;
        let a = act(ins, 0)?;
        let indices = cst(ins, 1, "indices")?;
        ensure!(
            a.dims.len() == 3,
            "Gather of per-image dims {:?} is not supported",
            a.dims
        );
        self.check_nchw(&a)?;
        let axis = norm_axis(n.int("axis", 0)?, 4)?;
        ensure!(
            axis >= 2 && indices.shape.len() == 1,
            "only a Gather of rows or columns (axis 2 or 3, 1-D indices) is supported"
        );
        let d = a.dims[axis - 1];
        let idx: Vec<i64> = indices
            .to_known_i64s("the indices")?
            .iter()
            .map(|&i| if i < 0 { i + d as i64 } else { i })
            .collect();
        let step = match idx[..] {
            [] => bail!("Gather with no indices"),
            [_] => d,
            _ => usize::try_from(idx[1]).unwrap_or(0),
        };
        let every_kth = step > 0
            && idx.len() == d.div_ceil(step)
            && idx.iter().enumerate().all(|(k, &i)| i == (k * step) as i64);
        ensure!(
            every_kth,
            "only a Gather of every k-th row or column from the first to the end is supported"
        );
        let mut stride = match a.pending {
            Pending::None => [1, 1],
            Pending::Subsample(s) => s,
            Pending::ZeroPad(_) => bail!("Gather after a zero Pad is not supported"),
        };
        let mut dims = a.dims.clone();
        stride[axis - 2] *= step;
        dims[axis - 1] = idx.len();
        if stride == [1, 1] {
            return Ok(Val::Act(a));
        }
        Ok(Val::Act(Act {
            id: a.id,
            dims,
            pending: Pending::Subsample(stride),
            owner: None,
        }))
    }

    /// Pad of an activation: zero channels (the option-A shortcut, after a subsampling Slice or
    /// not), or zero rows and columns that the next Conv absorbs.
    pub(super) fn pad(&mut self, n: &NodeRef, ins: &[Option<Val>]) -> Result<Val> {
        let name = n.ir_name();
        let a = act(ins, 0)?;
        ensure!(
            a.dims.len() == 3,
            "Pad of per-image dims {:?} is not supported",
            a.dims
        );
        self.check_nchw(&a)?;
        let (mode, pads, value, axes) = if n.opset < 11 {
            n.check_attrs(&["mode", "pads", "value", "paddings"])?;
            let pads = match n.ints("pads")? {
                Some(p) => p,
                None => n
                    .ints("paddings")?
                    .ok_or_else(|| anyhow!("Pad needs pads"))?,
            };
            (n.string("mode")?, pads, n.float("value", 0.0)?, None)
        } else {
            n.check_attrs(&["mode"])?;
            let pads = cst(ins, 1, "pads")?.to_known_i64s("the pads")?;
            let value = match opt_cst(ins, 2, "constant_value")? {
                Some(v) => v.scalar_f32()?,
                None => 0.0,
            };
            let axes = opt_cst(ins, 3, "axes")?
                .map(|c| c.to_known_i64s("the axes"))
                .transpose()?;
            (n.string("mode")?, pads, value, axes)
        };
        let axes: Vec<usize> = match axes {
            Some(ax) => ax.iter().map(|&x| norm_axis(x, 4)).collect::<Result<_>>()?,
            None => (0..4).collect(),
        };
        ensure!(
            pads.len() == 2 * axes.len(),
            "pads {pads:?} do not match {} axes",
            axes.len()
        );
        let (mut begin, mut end) = ([0usize; 4], [0usize; 4]);
        for (k, &ax) in axes.iter().enumerate() {
            let (b, e) = (pads[k], pads[k + axes.len()]);
            ensure!(
                b >= 0 && e >= 0,
                "negative pads {pads:?} (cropping) are not supported"
            );
            begin[ax] = b as usize;
            end[ax] = e as usize;
        }
        if begin == [0; 4] && end == [0; 4] {
            return Ok(Val::Act(a));
        }
        let mode = mode.unwrap_or_else(|| "constant".into());
        ensure!(
            mode == "constant",
            "Pad mode '{mode}' is not supported (only constant zero padding)"
        );
        ensure!(
            value == 0.0,
            "padding with {value} is not supported (only zeros)"
        );
        ensure!(
            begin[0] == 0 && end[0] == 0,
            "padding the batch axis is not supported"
        );
        let channels = begin[1] + end[1] > 0;
        let spatial = begin[2] + begin[3] + end[2] + end[3] > 0;
        ensure!(
            !(channels && spatial),
            "padding channels and height/width at once is not supported"
        );
        if channels {
            let stride = match a.pending {
                Pending::None => 1,
                Pending::Subsample([sh, sw]) if sh == sw => sh,
                Pending::Subsample([sh, sw]) => bail!(
                    "the padded value is subsampled by {sh} in height but {sw} in width; only \
                     equal steps are supported"
                ),
                Pending::ZeroPad(_) => bail!("Pad after a zero Pad is not supported"),
            };
            let c = a.dims[0];
            let out = c + begin[1] + end[1];
            let id = self
                .g
                .shortcut_a_padded(&name, a.id, stride, begin[1], out)?;
            return Ok(self.made(n, id, vec![out, a.dims[1], a.dims[2]]));
        }
        let a = match a.pending {
            Pending::Subsample(_) => self.materialize(&a, &name)?,
            _ => a,
        };
        let mut pad = match a.pending {
            Pending::ZeroPad(p) => p,
            _ => [0; 4],
        };
        pad[0] += begin[2];
        pad[1] += begin[3];
        pad[2] += end[2];
        pad[3] += end[3];
        let dims = vec![
            a.dims[0],
            a.dims[1] + begin[2] + end[2],
            a.dims[2] + begin[3] + end[3],
        ];
        Ok(Val::Act(Act {
            id: a.id,
            dims,
            pending: Pending::ZeroPad(pad),
            owner: None,
        }))
    }
}
