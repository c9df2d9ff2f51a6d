//! Builds small ONNX models with the protobuf types (no Python), and alongside them the graph our
//! IR should produce for the same weights, so that a test can check the loader against the CPU
//! reference.
#![allow(dead_code)]

use resnet_wgpu::graph::{self, Graph, ValueId};
use resnet_wgpu::model::onnx::Message;
use resnet_wgpu::model::onnx::proto::attribute_proto::AttributeType;
use resnet_wgpu::model::onnx::proto::tensor_shape_proto::{Dimension, dimension};
use resnet_wgpu::model::onnx::proto::{
    AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, type_proto,
};
use resnet_wgpu::tensor::{SplitMix64, Tensor};

/// How the input's batch dimension is declared.
#[derive(Clone, Copy, Debug)]
pub enum Batch {
    Symbolic,
    Fixed(i64),
    /// A dimension with neither a value nor a name.
    Unknown,
}

/// How float initializers are stored.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Encoding {
    RawData,
    FloatData,
    DoubleData,
    /// In an external file; `Onnx::external` collects the bytes.
    External,
}

pub struct Onnx {
    pub opset: i64,
    pub nodes: Vec<NodeProto>,
    pub inits: Vec<TensorProto>,
    pub batch: Batch,
    pub chw: [i64; 3],
    pub encoding: Encoding,
    /// List initializers among the graph inputs too (IR version 3 files do).
    pub inits_as_inputs: bool,
    /// The external data file's contents when `encoding` is External.
    pub external: Vec<u8>,
    pub external_name: String,
    count: usize,
}

pub fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Int as i32),
        i: Some(v),
        ..Default::default()
    }
}

pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub fn float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Float as i32),
        f: Some(v),
        ..Default::default()
    }
}

pub fn string(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::String as i32),
        s: Some(v.as_bytes().to_vec()),
        ..Default::default()
    }
}

pub fn tensor_attr(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(AttributeType::Tensor as i32),
        t: Some(t),
        ..Default::default()
    }
}

/// A 1-D int64 tensor (typed field).
pub fn i64_tensor(v: &[i64]) -> TensorProto {
    TensorProto {
        dims: vec![v.len() as i64],
        data_type: Some(7),
        int64_data: v.to_vec(),
        ..Default::default()
    }
}

fn dim(d: Option<i64>, param: Option<&str>) -> Dimension {
    Dimension {
        denotation: None,
        value: match (d, param) {
            (Some(v), _) => Some(dimension::Value::DimValue(v)),
            (None, Some(p)) => Some(dimension::Value::DimParam(p.into())),
            _ => None,
        },
    }
}

pub fn value_info(name: &str, dims: Vec<Dimension>) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            denotation: None,
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: Some(1),
                shape: Some(TensorShapeProto { dim: dims }),
            })),
        }),
        ..Default::default()
    }
}

impl Onnx {
    pub fn new(opset: i64, batch: Batch, chw: [i64; 3]) -> Self {
        Self {
            opset,
            nodes: Vec::new(),
            inits: Vec::new(),
            batch,
            chw,
            encoding: Encoding::RawData,
            inits_as_inputs: false,
            external: Vec::new(),
            external_name: "weights.bin".into(),
            count: 0,
        }
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.count += 1;
        format!("{hint}_{}", self.count)
    }

    /// A float initializer stored the way `encoding` says.
    pub fn f32(&mut self, hint: &str, shape: &[usize], data: &[f32]) -> String {
        let name = self.fresh(hint);
        let mut t = TensorProto {
            name: Some(name.clone()),
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type: Some(1),
            ..Default::default()
        };
        let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        match self.encoding {
            Encoding::RawData => t.raw_data = Some(raw),
            Encoding::FloatData => t.float_data = data.to_vec(),
            Encoding::DoubleData => {
                t.data_type = Some(11);
                t.double_data = data.iter().map(|&v| v as f64).collect();
            }
            Encoding::External => {
                // Page-aligned offsets, as onnx.save_model writes them.
                while !self.external.len().is_multiple_of(4096) {
                    self.external.push(0);
                }
                let entry = |k: &str, v: String| StringStringEntryProto {
                    key: Some(k.into()),
                    value: Some(v),
                };
                t.data_location = Some(1);
                t.external_data = vec![
                    entry("location", self.external_name.clone()),
                    entry("offset", self.external.len().to_string()),
                    entry("length", raw.len().to_string()),
                ];
                self.external.extend(raw);
            }
        }
        self.inits.push(t);
        name
    }

    /// A 1-D int64 initializer (typed field, or raw_data with RawData encoding).
    pub fn i64s(&mut self, hint: &str, v: &[i64]) -> String {
        let name = self.fresh(hint);
        let mut t = i64_tensor(v);
        t.name = Some(name.clone());
        if self.encoding == Encoding::RawData {
            t.int64_data.clear();
            t.raw_data = Some(v.iter().flat_map(|x| x.to_le_bytes()).collect());
        }
        self.inits.push(t);
        name
    }

    /// Adds a node with one output; returns the output's name.
    pub fn node(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.node_n(op, inputs, attrs, 1).pop().unwrap()
    }

    pub fn node_n(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        outputs: usize,
    ) -> Vec<String> {
        let name = self.fresh(&op.to_ascii_lowercase());
        let outs: Vec<String> = (0..outputs).map(|k| format!("{name}.out{k}")).collect();
        self.nodes.push(NodeProto {
            name: Some(name),
            op_type: Some(op.into()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outs.clone(),
            attribute: attrs,
            ..Default::default()
        });
        outs
    }

    /// A `Constant` node holding int64 values.
    pub fn constant_i64(&mut self, v: &[i64]) -> String {
        self.node("Constant", &[], vec![tensor_attr("value", i64_tensor(v))])
    }

    pub fn model(&self, output: &str) -> ModelProto {
        let batch = match self.batch {
            Batch::Symbolic => dim(None, Some("N")),
            Batch::Fixed(n) => dim(Some(n), None),
            Batch::Unknown => dim(None, None),
        };
        let mut dims = vec![batch];
        dims.extend(self.chw.iter().map(|&d| dim(Some(d), None)));
        let mut inputs = vec![value_info("input", dims)];
        if self.inits_as_inputs {
            inputs.extend(self.inits.iter().map(|t| ValueInfoProto {
                name: t.name.clone(),
                ..Default::default()
            }));
        }
        ModelProto {
            ir_version: Some(if self.opset < 9 { 3 } else { 8 }),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(self.opset),
            }],
            producer_name: Some("resnet-wgpu tests".into()),
            graph: Some(GraphProto {
                name: Some("test".into()),
                node: self.nodes.clone(),
                initializer: self.inits.clone(),
                input: inputs,
                output: vec![value_info(output, vec![])],
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    pub fn bytes(&self, output: &str) -> Vec<u8> {
        self.model(output).encode_to_vec()
    }
}

/// An ONNX value and the IR value it should become.
#[derive(Clone, Debug)]
pub struct V {
    pub name: String,
    pub id: ValueId,
}

/// Builds an ONNX model and the expected IR graph side by side, with random weights.
pub struct Net {
    pub onnx: Onnx,
    pub g: Graph,
    pub rng: SplitMix64,
}

impl Net {
    pub fn new(opset: i64, batch: Batch, chw: [usize; 3]) -> (Self, V) {
        let net = Self {
            onnx: Onnx::new(opset, batch, chw.map(|d| d as i64)),
            g: Graph::new(chw),
            rng: SplitMix64(opset as u64 * 7919 + 17),
        };
        (
            net,
            V {
                name: "input".into(),
                id: 0,
            },
        )
    }

    pub fn channels(&self, x: &V) -> usize {
        self.g.shape(x.id)[0]
    }

    fn uniform(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n)
            .map(|_| lo + (hi - lo) * self.rng.uniform())
            .collect()
    }

    /// Conv (groups 1) with random He-normal weights; square kernel, symmetric padding.
    pub fn conv(
        &mut self,
        x: &V,
        out: usize,
        k: usize,
        stride: usize,
        pad: usize,
        bias: bool,
    ) -> V {
        let c = self.channels(x);
        let w = self
            .rng
            .normal_vec(out * c * k * k, (2.0 / (c * k * k) as f32).sqrt());
        let wn = self.onnx.f32("w", &[out, c, k, k], &w);
        let b = bias.then(|| self.rng.normal_vec(out, 0.1));
        let mut inputs = vec![x.name.as_str(), wn.as_str()];
        let bn;
        if let Some(b) = &b {
            bn = self.onnx.f32("b", &[out], b);
            inputs.push(&bn);
        }
        let p = pad as i64;
        let name = self.onnx.node(
            "Conv",
            &inputs,
            vec![
                ints("kernel_shape", &[k as i64, k as i64]),
                ints("strides", &[stride as i64, stride as i64]),
                ints("pads", &[p, p, p, p]),
                ints("dilations", &[1, 1]),
                int("group", 1),
            ],
        );
        let conv = graph::Conv {
            weight: Tensor::new(vec![out, c, k, k], w).unwrap(),
            bias: b,
            stride: [stride; 2],
            pad: [pad; 4],
            relu: false,
        };
        let id = self.g.conv(&name, x.id, conv).unwrap();
        V { name, id }
    }

    pub fn bn(&mut self, x: &V) -> V {
        let c = self.channels(x);
        let gamma = self.uniform(c, 0.5, 1.5);
        let beta = self.rng.normal_vec(c, 0.1);
        let mean = self.rng.normal_vec(c, 0.1);
        let var = self.uniform(c, 0.5, 1.5);
        let names: Vec<String> = [&gamma, &beta, &mean, &var]
            .iter()
            .map(|v| self.onnx.f32("bn", &[c], v))
            .collect();
        let mut attrs = vec![float("epsilon", 1e-5)];
        if self.onnx.opset < 9 {
            attrs.push(int("spatial", 1));
        }
        if self.onnx.opset < 14 {
            attrs.push(float("momentum", 0.9));
        }
        let name = self.onnx.node(
            "BatchNormalization",
            &[&x.name, &names[0], &names[1], &names[2], &names[3]],
            attrs,
        );
        let bn = graph::BatchNorm {
            gamma,
            beta,
            mean,
            var,
            eps: 1e-5,
            relu: false,
        };
        let id = self.g.batch_norm(&name, x.id, bn).unwrap();
        V { name, id }
    }

    pub fn relu(&mut self, x: &V) -> V {
        let name = self.onnx.node("Relu", &[&x.name], vec![]);
        let id = self.g.relu(&name, x.id);
        V { name, id }
    }

    pub fn add(&mut self, a: &V, b: &V) -> V {
        let name = self.onnx.node("Add", &[&a.name, &b.name], vec![]);
        let id = self.g.add(&name, a.id, b.id, false).unwrap();
        V { name, id }
    }

    pub fn max_pool(&mut self, x: &V, k: usize, stride: usize, pad: usize) -> V {
        let p = pad as i64;
        let mut attrs = vec![
            ints("kernel_shape", &[k as i64, k as i64]),
            ints("strides", &[stride as i64, stride as i64]),
            ints("pads", &[p, p, p, p]),
        ];
        if self.onnx.opset >= 10 {
            attrs.push(int("ceil_mode", 0));
        }
        let name = self.onnx.node("MaxPool", &[&x.name], attrs);
        let pool = graph::MaxPool {
            kernel: [k; 2],
            stride: [stride; 2],
            pad: [pad; 4],
        };
        let id = self.g.max_pool(&name, x.id, pool).unwrap();
        V { name, id }
    }

    pub fn global_avg_pool(&mut self, x: &V) -> V {
        let name = self.onnx.node("GlobalAveragePool", &[&x.name], vec![]);
        let id = self.g.global_avg_pool(&name, x.id);
        V { name, id }
    }

    /// ONNX Flatten(axis 1): no IR node.
    pub fn flatten(&mut self, x: &V) -> V {
        let name = self.onnx.node("Flatten", &[&x.name], vec![int("axis", 1)]);
        V { name, id: x.id }
    }

    /// Random fc weights [out, in]; Gemm with B = W (transB 1) or B = W^T (transB 0).
    pub fn gemm(&mut self, x: &V, out: usize, trans_b: bool) -> V {
        let [c, h, w] = self.g.shape(x.id);
        let inp = c * h * w;
        let bound = 1.0 / (inp as f32).sqrt();
        let weight = self.uniform(out * inp, -bound, bound);
        let bias = self.uniform(out, -bound, bound);
        let b_data: Vec<f32> = if trans_b {
            weight.clone()
        } else {
            (0..inp * out)
                .map(|i| weight[(i % out) * inp + i / out])
                .collect()
        };
        let b_shape = if trans_b { [out, inp] } else { [inp, out] };
        let bn = self.onnx.f32("fc_w", &b_shape, &b_data);
        let cn = self.onnx.f32("fc_b", &[out], &bias);
        let name = self.onnx.node(
            "Gemm",
            &[&x.name, &bn, &cn],
            vec![
                float("alpha", 1.0),
                float("beta", 1.0),
                int("transB", trans_b as i64),
            ],
        );
        let lin = graph::Linear {
            weight: Tensor::new(vec![out, inp], weight).unwrap(),
            bias: Some(bias),
        };
        let id = self.g.linear(&name, x.id, lin).unwrap();
        V { name, id }
    }

    pub fn softmax(&mut self, x: &V, axis: i64) -> V {
        let name = self
            .onnx
            .node("Softmax", &[&x.name], vec![int("axis", axis)]);
        let id = self.g.softmax(&name, x.id);
        V { name, id }
    }

    /// The model bytes with `out` as its output; the expected graph's output is `out` too.
    pub fn finish(&mut self, out: &V) -> Vec<u8> {
        self.g.output = out.id;
        self.onnx.bytes(&out.name)
    }
}
