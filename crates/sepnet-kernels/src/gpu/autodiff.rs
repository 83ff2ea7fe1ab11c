//! [`GpuKernels`] under autodiff: the forward pass is sepnet's kernel, the backward passes
//! are burn's own convolution gradients on the inner backend.

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::ConvOptions;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend};

use burn::tensor::Shape;

use super::GpuKernels;
use crate::Fused;
use crate::Geometry;

/// burn's description of the convolution `geometry` describes, in `groups` groups.
fn options(geometry: &Geometry, groups: usize) -> ConvOptions<2> {
    let [top, bottom, left, right] = geometry.pads;
    ConvOptions::new_with_padding(
        geometry.stride,
        [(top, bottom), (left, right)],
        geometry.dilation,
        groups,
    )
}

#[derive(Debug)]
struct ConvBackward;

impl<B: Backend> Backward<B, 2> for ConvBackward {
    type State = (NodeId, NodeId, Geometry);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, geometry) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        let options = options(&geometry, 1);
        if let Some(node) = node_x {
            let dx = B::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone());
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_weight {
            grads.register::<B>(node.id, B::conv2d_weight_backward(x, weight, grad, options));
        }
    }
}

/// A depthwise convolution with bias and activation: the activation's gradient from the
/// output, the bias's as its sum, the input's and the weights' by burn's grouped convolution.
#[derive(Debug)]
struct DepthwiseBackward;

/// What [`DepthwiseBackward`] needs: checkpoints of `x` and the weights, the output, the
/// settings.
#[derive(Clone, Debug)]
struct DepthwiseState<B: Backend> {
    inputs: [NodeId; 2],
    output: FloatTensor<B>,
    geometry: Geometry,
    activation: Fused,
}

impl<B: GpuKernels> Backward<B, 3> for DepthwiseBackward {
    type State = DepthwiseState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let state = ops.state;
        let grad = grads.consume::<B>(&ops.node);
        let dz = match state.activation {
            Fused::Linear => grad,
            act => B::activation_grad(state.output, grad, act),
        };
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(state.inputs[0]);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(state.inputs[1]);
        let [_, channels, _, _] = state.geometry.input;
        let options = options(&state.geometry, channels);
        if let Some(node) = node_bias {
            let sums = B::float_sum_dims(dz.clone(), &[0, 2, 3]);
            let filters = channels * state.geometry.multiplier;
            grads.register::<B>(node.id, B::float_reshape(sums, Shape::new([filters])));
        }
        if let Some(node) = node_x {
            let dx = B::conv2d_x_backward(x.clone(), weight.clone(), dz.clone(), options.clone());
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_weight {
            grads.register::<B>(node.id, B::conv2d_weight_backward(x, weight, dz, options));
        }
    }
}

impl<B: GpuKernels, C: CheckpointStrategy> GpuKernels for Autodiff<B, C> {
    fn depthwise_bias_act(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        geometry: Geometry,
        activation: Fused,
    ) -> FloatTensor<Self> {
        match DepthwiseBackward
            .prepare::<C>([x.node(), weight.node(), bias.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let inputs = [prep.checkpoint(&x), prep.checkpoint(&weight)];
                let (x, weight, bias) = (
                    x.into_primitive(),
                    weight.into_primitive(),
                    bias.into_primitive(),
                );
                let output = B::depthwise_bias_act(x, weight, bias, geometry, activation);
                let state = DepthwiseState {
                    inputs,
                    output: output.clone(),
                    geometry,
                    activation,
                };
                prep.finish(state, output)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::depthwise_bias_act(
                x.into_primitive(),
                weight.into_primitive(),
                bias.into_primitive(),
                geometry,
                activation,
            )),
        }
    }

    fn activation_grad(
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        activation: Fused,
    ) -> FloatTensor<Self> {
        // A gradient kernel: not differentiated again (no double backward).
        Self::from_inner(B::activation_grad(
            Self::inner(output),
            Self::inner(output_grad),
            activation,
        ))
    }

    fn conv2d_tiled(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        geometry: Geometry,
    ) -> FloatTensor<Self> {
        match ConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let y = B::conv2d_tiled(x.into_primitive(), weight.into_primitive(), geometry);
                prep.finish((x_state, weight_state, geometry), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::conv2d_tiled(
                x.into_primitive(),
                weight.into_primitive(),
                geometry,
            )),
        }
    }
}
