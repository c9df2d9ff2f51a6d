//! One ONNX node as the import sees it: its name for messages, its attributes with defaults and
//! type checks, and the opset it binds to.

use super::proto::attribute_proto::AttributeType;
use super::proto::{AttributeProto, NodeProto, TensorProto};
use anyhow::{Result, anyhow, bail};

pub struct NodeRef<'a> {
    pub proto: &'a NodeProto,
    /// The model's ai.onnx opset version.
    pub opset: i64,
}

impl<'a> NodeRef<'a> {
    pub fn op(&self) -> &'a str {
        self.proto.op_type.as_deref().unwrap_or("")
    }

    /// The node's name, or its first output's when it has none (exporters often omit names).
    pub fn name(&self) -> String {
        match self.proto.name.as_deref() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => self
                .proto
                .output
                .iter()
                .find(|o| !o.is_empty())
                .map(|o| format!("<output {o}>"))
                .unwrap_or_else(|| "<unnamed>".into()),
        }
    }

    /// A name usable for a graph node: the node's name or its first output's.
    pub fn ir_name(&self) -> String {
        match self.proto.name.as_deref() {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => self.proto.output.first().cloned().unwrap_or_default(),
        }
    }

    fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.proto
            .attribute
            .iter()
            .find(|a| a.name.as_deref() == Some(name))
    }

    /// Refuses attributes the import does not know for this op.
    pub fn check_attrs(&self, known: &[&str]) -> Result<()> {
        for a in &self.proto.attribute {
            let name = a.name.as_deref().unwrap_or("");
            if a.ref_attr_name.is_some() {
                bail!("attribute '{name}' refers to a function attribute, which is not supported");
            }
            if !known.contains(&name) {
                bail!("attribute '{name}' is not supported");
            }
        }
        Ok(())
    }

    fn typed(&self, name: &str, want: AttributeType) -> Result<Option<&'a AttributeProto>> {
        let Some(a) = self.attr(name) else {
            return Ok(None);
        };
        if let Some(t) = a.r#type
            && t != want as i32
        {
            let got = AttributeType::try_from(t)
                .map(|t| t.as_str_name().to_string())
                .unwrap_or_else(|_| t.to_string());
            bail!(
                "attribute '{name}' should be {} but is {got}",
                want.as_str_name()
            );
        }
        Ok(Some(a))
    }

    pub fn int(&self, name: &str, default: i64) -> Result<i64> {
        Ok(match self.typed(name, AttributeType::Int)? {
            Some(a) => {
                a.i.ok_or_else(|| anyhow!("attribute '{name}' has no value"))?
            }
            None => default,
        })
    }

    pub fn ints(&self, name: &str) -> Result<Option<Vec<i64>>> {
        Ok(self
            .typed(name, AttributeType::Ints)?
            .map(|a| a.ints.clone()))
    }

    pub fn float(&self, name: &str, default: f32) -> Result<f32> {
        Ok(match self.typed(name, AttributeType::Float)? {
            Some(a) => {
                a.f.ok_or_else(|| anyhow!("attribute '{name}' has no value"))?
            }
            None => default,
        })
    }

    pub fn floats(&self, name: &str) -> Result<Option<Vec<f32>>> {
        Ok(self
            .typed(name, AttributeType::Floats)?
            .map(|a| a.floats.clone()))
    }

    pub fn string(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .typed(name, AttributeType::String)?
            .map(|a| String::from_utf8_lossy(a.s.as_deref().unwrap_or_default()).into()))
    }

    pub fn tensor(&self, name: &str) -> Result<Option<&'a TensorProto>> {
        Ok(match self.typed(name, AttributeType::Tensor)? {
            Some(a) => Some(
                a.t.as_ref()
                    .ok_or_else(|| anyhow!("attribute '{name}' has no tensor"))?,
            ),
            None => None,
        })
    }

    pub fn has_attr(&self, name: &str) -> bool {
        self.attr(name).is_some()
    }
}

/// An axis in [-rank, rank) as an index in [0, rank).
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        bail!("axis {axis} is out of range for rank {rank}");
    }
    Ok(if axis < 0 { axis + r } else { axis } as usize)
}
