//! What the engine uses of an adapter, and why two adapters can take different kernels: the
//! subgroup width (the weight-sharing convolutions need exactly 8 lanes), SHADER_F16 (f16
//! convolutions), timestamp queries (GPU time per pass, per-dispatch profiles, the tuner's
//! timing) and cooperative-matrix configurations (matrix units; listed, not yet used).
//! `adapters` and the portability report print this; the kernel choices read the same functions.

use serde::Serialize;

/// The engine-relevant capabilities of one adapter (or of an opened device).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EngineCapabilities {
    /// Subgroup lanes, "min-max", or "none" where the adapter has no SUBGROUP feature.
    pub subgroup_sizes: String,
    /// Whether the 8-lane subgroup convolutions are candidates here.
    pub subgroup8_kernels: bool,
    /// Whether f16 convolutions can run (SHADER_F16).
    pub shader_f16: bool,
    /// Where timestamps can be written.
    pub timestamps: Timestamps,
    /// Cooperative-matrix configurations as "MxNxK AB->C" (empty where there are none).
    pub cooperative_matrix: Vec<String>,
}

/// Whether subgroups are exactly 8 lanes wide, which the weight-sharing convolutions assume.
pub fn subgroup8(features: wgpu::Features, info: &wgpu::AdapterInfo) -> bool {
    features.contains(wgpu::Features::SUBGROUP)
        && info.subgroup_min_size == 8
        && info.subgroup_max_size == 8
}

/// How much of the timestamp machinery a device offers. Written as "inside passes", "between
/// passes" or "none" in reports and JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Timestamps {
    /// Around every dispatch inside a pass: per-dispatch profiles and GPU-timed tuning.
    #[serde(rename = "inside passes")]
    InsidePasses,
    /// At pass boundaries only: GPU time per forward pass and GPU-timed tuning.
    #[serde(rename = "between passes")]
    BetweenPasses,
    /// None: wall time only.
    #[serde(rename = "none")]
    None,
}

impl Timestamps {
    /// What `features` offers.
    pub fn of(features: wgpu::Features) -> Self {
        if features.contains(
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES,
        ) {
            Self::InsidePasses
        } else if features.contains(wgpu::Features::TIMESTAMP_QUERY) {
            Self::BetweenPasses
        } else {
            Self::None
        }
    }

    fn words(self) -> &'static str {
        match self {
            Self::InsidePasses => "inside passes",
            Self::BetweenPasses => "between passes",
            Self::None => "none",
        }
    }
}

/// One cooperative-matrix configuration, e.g. "16x16x16 F16->F32".
fn describe_cooperative_matrix(p: &wgpu::CooperativeMatrixProperties) -> String {
    format!(
        "{}x{}x{} {:?}->{:?}{}",
        p.m_size,
        p.n_size,
        p.k_size,
        p.ab_type,
        p.cr_type,
        if p.saturating_accumulation {
            " (saturating)"
        } else {
            ""
        }
    )
}

impl EngineCapabilities {
    /// From an adapter's features, info and cooperative-matrix list.
    pub fn from_parts(
        features: wgpu::Features,
        info: &wgpu::AdapterInfo,
        cooperative: &[wgpu::CooperativeMatrixProperties],
    ) -> Self {
        let subgroup_sizes = if !features.contains(wgpu::Features::SUBGROUP) {
            "none".to_string()
        } else if info.subgroup_min_size == info.subgroup_max_size {
            info.subgroup_min_size.to_string()
        } else {
            format!("{}-{}", info.subgroup_min_size, info.subgroup_max_size)
        };
        Self {
            subgroup_sizes,
            subgroup8_kernels: subgroup8(features, info),
            shader_f16: features.contains(wgpu::Features::SHADER_F16),
            timestamps: Timestamps::of(features),
            cooperative_matrix: cooperative
                .iter()
                .map(describe_cooperative_matrix)
                .collect(),
        }
    }

    /// What `adapter` offers the engine.
    pub fn of(adapter: &wgpu::Adapter) -> Self {
        Self::from_parts(
            adapter.features(),
            &adapter.get_info(),
            &adapter.cooperative_matrix_properties(),
        )
    }

    /// One line for people: "subgroups 8 (8-lane kernels), f16 yes, timestamps inside passes,
    /// cooperative matrix none".
    pub fn line(&self) -> String {
        let coop = if self.cooperative_matrix.is_empty() {
            "none".to_string()
        } else {
            self.cooperative_matrix.join(", ")
        };
        format!(
            "subgroups {}{}, f16 {}, timestamps {}, cooperative matrix {}",
            self.subgroup_sizes,
            if self.subgroup8_kernels {
                " (8-lane kernels)"
            } else {
                ""
            },
            if self.shader_f16 { "yes" } else { "no" },
            self.timestamps.words(),
            coop
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(min: u32, max: u32) -> wgpu::AdapterInfo {
        wgpu::AdapterInfo {
            subgroup_min_size: min,
            subgroup_max_size: max,
            ..wgpu::AdapterInfo::new(wgpu::DeviceType::Cpu, wgpu::Backend::Vulkan)
        }
    }

    #[test]
    fn eight_lane_kernels_need_exactly_eight_lanes_and_the_feature() {
        let sg = wgpu::Features::SUBGROUP;
        assert!(subgroup8(sg, &info(8, 8)));
        assert!(!subgroup8(sg, &info(4, 8)));
        assert!(!subgroup8(sg, &info(32, 32)));
        assert!(!subgroup8(wgpu::Features::empty(), &info(8, 8)));
    }

    #[test]
    fn line_names_every_capability() {
        let caps = EngineCapabilities::from_parts(
            wgpu::Features::SUBGROUP | wgpu::Features::TIMESTAMP_QUERY,
            &info(4, 64),
            &[wgpu::CooperativeMatrixProperties {
                m_size: 16,
                n_size: 16,
                k_size: 16,
                ab_type: wgpu::CooperativeScalarType::F16,
                cr_type: wgpu::CooperativeScalarType::F32,
                saturating_accumulation: false,
            }],
        );
        assert_eq!(
            caps.line(),
            "subgroups 4-64, f16 no, timestamps between passes, cooperative matrix 16x16x16 F16->F32"
        );
        let none = EngineCapabilities::from_parts(wgpu::Features::empty(), &info(0, 0), &[]);
        assert_eq!(
            none.line(),
            "subgroups none, f16 no, timestamps none, cooperative matrix none"
        );
    }
}
