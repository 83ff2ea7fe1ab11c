//! [`SepnetKernels`] on burn-flex: unpack the tensors to `f32` slices, run the kernel, pack
//! the result.

use burn::backend::Flex;
use burn::backend::flex::FlexTensor;
use burn::tensor::TensorData;

use super::direct::blocked::{self, Blocking};
use super::{
    AdamUpdate, BiasGrads, BlockedConvGrads, BlockedDepthwiseGrads, Geometry, NormGrads, NormTrain,
    SepnetKernels, adam, batch_norm, bias_act, dense, depthwise, direct, few_rows, pointwise, pool,
    separable,
};
use crate::Fused;

/// Runs `f` on the contiguous `f32` values of a tensor.
fn with_values<R>(t: &FlexTensor, f: impl FnOnce(&[f32]) -> R) -> R {
    let t = t.to_contiguous();
    f(t.as_slice::<f32>()
        .expect("sepnet kernels are only routed f32 tensors"))
}

/// Runs `f` on the values of two tensors.
fn with_pair<R>(a: &FlexTensor, b: &FlexTensor, f: impl FnOnce(&[f32], &[f32]) -> R) -> R {
    with_values(a, |a| with_values(b, |b| f(a, b)))
}

/// `t` with a buffer of its own holding exactly its values: `t` itself when nothing else
/// holds it, else a copy.
fn exclusive(t: FlexTensor) -> FlexTensor {
    let mut t = {
        let contiguous = t.to_contiguous();
        drop(t); // so `contiguous` is the only owner when it shares `t`'s buffer
        contiguous
    };
    let len = t.layout().num_elements();
    if t.try_storage_mut::<f32>().is_some_and(|v| v.len() == len) {
        return t;
    }
    let shape = t.layout().shape().to_vec();
    FlexTensor::from_data(TensorData::new(with_values(&t, <[f32]>::to_vec), shape))
}

/// The values of a tensor made by [`exclusive`].
fn values_mut(t: &mut FlexTensor) -> &mut [f32] {
    t.try_storage_mut::<f32>()
        .expect("`exclusive` gave the tensor a buffer of its own")
}

fn tensor(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

fn matrix_dims(t: &FlexTensor) -> [usize; 2] {
    let shape = t.layout().shape();
    [shape[0], shape[1]]
}

fn dims(t: &FlexTensor) -> [usize; 4] {
    let shape = t.layout().shape();
    [shape[0], shape[1], shape[2], shape[3]]
}

/// Pointwise dimensions from an activation `[n, _, h, w]` and a weight shape `[f, c, 1, 1]`.
fn pointwise_dims(activation: [usize; 4], weight: [usize; 4]) -> pointwise::Dims {
    let [batch, _, h, w] = activation;
    pointwise::Dims {
        batch,
        channels: weight[1],
        filters: weight[0],
        pixels: h * w,
    }
}

fn vector(values: Vec<f32>) -> FlexTensor {
    let n = values.len();
    FlexTensor::from_data(TensorData::new(values, [n]))
}

fn norm_dims(x: &FlexTensor) -> batch_norm::Dims {
    let [batch, channels, h, w] = dims(x);
    batch_norm::Dims {
        batch,
        channels,
        pixels: h * w,
    }
}

fn dense_output(g: &Geometry, filters: usize) -> [usize; 4] {
    let [oh, ow] = g.output_hw();
    [g.input[0], filters, oh, ow]
}

impl SepnetKernels for Flex {
    fn depthwise_conv2d(x: FlexTensor, weight: FlexTensor, g: Geometry) -> FlexTensor {
        let y = with_pair(&x, &weight, |x, w| depthwise::forward(x, w, &g));
        tensor(y, g.output())
    }

    fn depthwise_conv2d_input_grad(weight: FlexTensor, dy: FlexTensor, g: Geometry) -> FlexTensor {
        let dx = with_pair(&weight, &dy, |w, dy| depthwise::backward_input(w, dy, &g));
        tensor(dx, g.input)
    }

    fn depthwise_conv2d_weight_grad(x: FlexTensor, dy: FlexTensor, g: Geometry) -> FlexTensor {
        let dw = with_pair(&x, &dy, |x, dy| depthwise::backward_weight(x, dy, &g));
        tensor(dw, g.weight())
    }

    fn pointwise_conv2d(x: FlexTensor, weight: FlexTensor) -> FlexTensor {
        let d = pointwise_dims(dims(&x), dims(&weight));
        let [n, _, h, w] = dims(&x);
        let y = with_pair(&x, &weight, |x, wt| pointwise::forward(x, wt, d));
        tensor(y, [n, d.filters, h, w])
    }

    fn pointwise_conv2d_input_grad(weight: FlexTensor, dy: FlexTensor) -> FlexTensor {
        let d = pointwise_dims(dims(&dy), dims(&weight));
        let [n, _, h, w] = dims(&dy);
        let dx = with_pair(&weight, &dy, |wt, dy| pointwise::backward_input(wt, dy, d));
        tensor(dx, [n, d.channels, h, w])
    }

    fn pointwise_conv2d_weight_grad(x: FlexTensor, dy: FlexTensor) -> FlexTensor {
        let weight = [dims(&dy)[1], dims(&x)[1], 1, 1];
        let d = pointwise_dims(dims(&x), weight);
        let dw = with_pair(&x, &dy, |x, dy| pointwise::backward_weight(x, dy, d));
        tensor(dw, weight)
    }

    fn few_rows_matmul(x: FlexTensor, w: FlexTensor) -> FlexTensor {
        let ([rows, inner], cols) = (matrix_dims(&x), matrix_dims(&w)[1]);
        let d = few_rows::Dims { rows, inner, cols };
        let y = with_pair(&x, &w, |x, w| few_rows::forward(x, w, d));
        FlexTensor::from_data(TensorData::new(y, [rows, cols]))
    }

    fn dense_conv2d(x: FlexTensor, weight: FlexTensor, g: Geometry) -> FlexTensor {
        let filters = dims(&weight)[0];
        let y = with_pair(&x, &weight, |x, w| dense::forward(x, w, &g, filters));
        tensor(y, dense_output(&g, filters))
    }

    fn dense_conv2d_input_grad(weight: FlexTensor, dy: FlexTensor, g: Geometry) -> FlexTensor {
        let filters = dims(&weight)[0];
        let dx = with_pair(&weight, &dy, |w, dy| {
            dense::backward_input(w, dy, &g, filters)
        });
        tensor(dx, g.input)
    }

    fn dense_conv2d_weight_grad(x: FlexTensor, dy: FlexTensor, g: Geometry) -> FlexTensor {
        let filters = dims(&dy)[1];
        let dw = with_pair(&x, &dy, |x, dy| dense::backward_weight(x, dy, &g, filters));
        tensor(dw, [filters, g.input[1], g.kernel[0], g.kernel[1]])
    }

    fn max_pool(x: FlexTensor, g: Geometry) -> FlexTensor {
        let y = with_values(&x, |x| pool::forward(x, &g));
        tensor(y, g.output())
    }

    fn max_pool_input_grad(x: FlexTensor, dy: FlexTensor, g: Geometry) -> FlexTensor {
        let dx = with_pair(&x, &dy, |x, dy| pool::backward(x, dy, &g));
        tensor(dx, g.input)
    }

    fn bias_activation(x: FlexTensor, bias: FlexTensor, activation: Fused) -> FlexTensor {
        let [batch, channels, h, w] = dims(&x);
        let d = bias_act::Dims {
            batch,
            channels,
            pixels: h * w,
        };
        // In place when the convolution's output is ours alone (it is, straight from a kernel).
        let mut x = exclusive(x);
        with_values(&bias, |bias| {
            bias_act::forward_in_place(values_mut(&mut x), bias, activation, d)
        });
        x
    }

    fn bias_activation_grads(
        output: FlexTensor,
        dy: FlexTensor,
        activation: Fused,
    ) -> BiasGrads<Self> {
        let shape = dims(&output);
        let d = bias_act::Dims {
            batch: shape[0],
            channels: shape[1],
            pixels: shape[2] * shape[3],
        };
        let (x, bias) = with_pair(&output, &dy, |y, dy| {
            bias_act::backward(y, dy, activation, d)
        });
        BiasGrads {
            x: tensor(x, shape),
            bias: vector(bias),
        }
    }

    fn separable_inference(
        x: FlexTensor,
        dw_weight: FlexTensor,
        dw_bias: FlexTensor,
        pw_weight: FlexTensor,
        pw_bias: FlexTensor,
        g: Geometry,
        activations: [Fused; 2],
    ) -> FlexTensor {
        let filters = dims(&pw_weight)[0];
        let [_, _, oh, ow] = g.output();
        let fused = with_pair(&x, &dw_weight, |x, dw| {
            with_pair(&pw_weight, &pw_bias, |weight, bias| {
                with_values(&dw_bias, |between| {
                    let between = separable::Epilogue {
                        bias: between,
                        activation: activations[0],
                    };
                    let pw = separable::Pointwise {
                        weight,
                        bias,
                        activation: activations[1],
                    };
                    separable::forward(x, dw, &g, between, &pw)
                })
            })
        });
        match fused {
            Some(y) => tensor(y, [g.input[0], filters, oh, ow]),
            None => {
                let t = Self::depthwise_conv2d(x, dw_weight, g);
                let t = Self::bias_activation(t, dw_bias, activations[0]);
                let y = Self::pointwise_conv2d(t, pw_weight);
                Self::bias_activation(y, pw_bias, activations[1])
            }
        }
    }

    fn fused_batch_norm(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        epsilon: f64,
        activation: Fused,
    ) -> NormTrain<Self> {
        let (shape, d) = (dims(&x), norm_dims(&x));
        let out = with_pair(&x, &gamma, |x, gamma| {
            with_values(&beta, |beta| {
                let p = batch_norm::Affine {
                    gamma,
                    beta,
                    epsilon,
                    activation,
                };
                batch_norm::forward(x, p, d)
            })
        });
        NormTrain {
            output: tensor(out.output, shape),
            mean: vector(out.mean),
            variance: vector(out.variance),
        }
    }

    fn adam_update(
        param: FlexTensor,
        grad: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        coefficients: adam::Coefficients,
    ) -> AdamUpdate<Self> {
        let mut param = exclusive(param);
        let [mut moment_1, mut moment_2] = [moment_1, moment_2].map(exclusive);
        with_values(&grad, |grad| {
            let slices = adam::Slices {
                param: values_mut(&mut param),
                grad,
                moment_1: values_mut(&mut moment_1),
                moment_2: values_mut(&mut moment_2),
            };
            adam::update(slices, coefficients)
        });
        AdamUpdate {
            param,
            moment_1,
            moment_2,
        }
    }

    fn fused_batch_norm_grads(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        mean: FlexTensor,
        variance: FlexTensor,
        epsilon: f64,
        activation: Fused,
        dy: FlexTensor,
    ) -> NormGrads<Self> {
        let (shape, d) = (dims(&x), norm_dims(&x));
        let grads = with_pair(&x, &dy, |x, dy| {
            with_pair(&gamma, &beta, |gamma, beta| {
                with_pair(&mean, &variance, |mean, variance| {
                    let p = batch_norm::Affine {
                        gamma,
                        beta,
                        epsilon,
                        activation,
                    };
                    batch_norm::backward(x, p, mean, variance, dy, d)
                })
            })
        });
        NormGrads {
            x: tensor(grads.x, shape),
            gamma: vector(grads.gamma),
            beta: vector(grads.beta),
        }
    }

    fn to_blocked(x: FlexTensor, lanes: usize) -> FlexTensor {
        let b = Blocking {
            dims: dims(&x),
            lanes,
        };
        let values = with_values(&x, |x| blocked::to_blocked(x, b));
        tensor(values, blocked_shape(b))
    }

    fn to_blocked_bias_act(
        x: FlexTensor,
        bias: FlexTensor,
        activation: Fused,
        lanes: usize,
    ) -> FlexTensor {
        let b = Blocking {
            dims: dims(&x),
            lanes,
        };
        let mut values = with_values(&x, |x| blocked::to_blocked(x, b));
        drop(x);
        with_values(&bias, |bias| {
            blocked::add_bias_act(&mut values, bias, activation, b)
        });
        tensor(values, blocked_shape(b))
    }

    fn to_blocked_bias_act_grads(
        output: FlexTensor,
        dy: FlexTensor,
        shape: [usize; 4],
        activation: Fused,
    ) -> BiasGrads<Self> {
        let b = blocking_of(&output, shape);
        let mut pre = pre_activation_grad(output, dy, activation);
        let pre = values_mut(&mut pre);
        BiasGrads {
            bias: vector(blocked::channel_sums(pre, b)),
            x: tensor(blocked::from_blocked(pre, b), shape),
        }
    }

    fn from_blocked(x: FlexTensor, shape: [usize; 4]) -> FlexTensor {
        let b = blocking_of(&x, shape);
        tensor(with_values(&x, |x| blocked::from_blocked(x, b)), shape)
    }

    fn blocked_conv2d(
        x: FlexTensor,
        weight: FlexTensor,
        bias: FlexTensor,
        g: Geometry,
        activation: Fused,
    ) -> FlexTensor {
        let lanes = blocking_of(&x, g.input).lanes;
        let y = with_pair(&x, &weight, |x, w| {
            with_values(&bias, |bias| {
                let e = direct::Epilogue { bias, activation };
                direct::forward(x, w, e, &g, lanes)
            })
        });
        let [n, _, oh, ow] = g.output();
        let filters = dims(&weight)[0];
        tensor(
            y,
            blocked_shape(Blocking {
                dims: [n, filters, oh, ow],
                lanes,
            }),
        )
    }

    fn blocked_conv2d_grads(
        x: FlexTensor,
        weight: FlexTensor,
        output: FlexTensor,
        dy: FlexTensor,
        g: Geometry,
        activation: Fused,
    ) -> BlockedConvGrads<Self> {
        let lanes = blocking_of(&x, g.input).lanes;
        let filters = dims(&weight)[0];
        let [n, _, oh, ow] = g.output();
        let out = Blocking {
            dims: [n, filters, oh, ow],
            lanes,
        };
        let mut pre = pre_activation_grad(output, dy, activation);
        let pre = values_mut(&mut pre);
        let bias = blocked::channel_sums(pre, out);
        let dx = with_values(&weight, |w| direct::backward_input(w, pre, &g, lanes));
        let dw = with_values(&x, |x| direct::backward_weight(x, pre, &g, filters, lanes));
        BlockedConvGrads {
            x: tensor(
                dx,
                blocked_shape(Blocking {
                    dims: g.input,
                    lanes,
                }),
            ),
            weight: tensor(dw, dims(&weight)),
            bias: vector(bias),
        }
    }

    fn blocked_depthwise(x: FlexTensor, weight: FlexTensor, g: Geometry) -> FlexTensor {
        let lanes = blocking_of(&x, g.input).lanes;
        let y = with_pair(&x, &weight, |x, w| {
            direct::depthwise::forward(x, w, &g, lanes)
        });
        tensor(
            y,
            blocked_shape(Blocking {
                dims: g.output(),
                lanes,
            }),
        )
    }

    fn blocked_depthwise_grads(
        x: FlexTensor,
        weight: FlexTensor,
        dy: FlexTensor,
        g: Geometry,
    ) -> BlockedDepthwiseGrads<Self> {
        let input = blocking_of(&x, g.input);
        let dx = with_pair(&weight, &dy, |w, dy| {
            direct::depthwise::backward_input(w, dy, &g, input.lanes)
        });
        let dw = with_pair(&x, &dy, |x, dy| {
            direct::depthwise::backward_weight(x, dy, &g, input.lanes)
        });
        BlockedDepthwiseGrads {
            x: tensor(dx, blocked_shape(input)),
            weight: tensor(dw, dims(&weight)),
        }
    }

    fn blocked_max_pool(x: FlexTensor, shape: [usize; 4]) -> FlexTensor {
        let b = blocking_of(&x, shape);
        let [n, c, h, w] = shape;
        let y = with_values(&x, |x| blocked::max_pool_2x2(x, b));
        tensor(
            y,
            blocked_shape(Blocking {
                dims: [n, c, h / 2, w / 2],
                ..b
            }),
        )
    }

    fn blocked_max_pool_input_grad(x: FlexTensor, dy: FlexTensor, shape: [usize; 4]) -> FlexTensor {
        let b = blocking_of(&x, shape);
        let dx = with_pair(&x, &dy, |x, dy| blocked::max_pool_2x2_backward(x, dy, b));
        tensor(dx, blocked_shape(b))
    }
}

/// The gradient before an epilogue's activation from the epilogue's `output` (any layout):
/// written over the output gradient `dy` when nothing else holds it (an activation's worth of
/// memory less), `output` freed as soon as it is read when nothing else holds it.
fn pre_activation_grad(output: FlexTensor, dy: FlexTensor, activation: Fused) -> FlexTensor {
    let mut pre = exclusive(dy);
    with_values(&output, |y| {
        bias_act::mask_in_place(y, values_mut(&mut pre), activation)
    });
    pre
}

/// The tensor shape of a blocked batch: `[n, c / lanes, h·w, lanes]`.
fn blocked_shape(b: Blocking) -> [usize; 4] {
    let [n, _, h, w] = b.dims;
    [n, b.blocks(), h * w, b.lanes]
}

/// The layout of blocked tensor `x` standing for NCHW `shape`.
fn blocking_of(x: &FlexTensor, shape: [usize; 4]) -> Blocking {
    let b = Blocking {
        dims: shape,
        lanes: dims(x)[3],
    };
    assert_eq!(dims(x), blocked_shape(b), "blocked tensor of another shape");
    b
}
