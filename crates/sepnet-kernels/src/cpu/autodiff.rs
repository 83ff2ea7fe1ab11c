//! [`SepnetKernels`] under autodiff: each operation is recorded with a backward pass that
//! calls the inner backend's gradient kernels. The gradient operations themselves are not
//! differentiated again (no double backward): through autodiff they return plain values.

use burn::backend::TensorMetadata;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend};

use super::autodiff_blocked as blocked;
use super::{
    AdamUpdate, BiasGrads, BlockedConvGrads, BlockedDepthwiseGrads, Geometry, NormGrads, NormTrain,
    SepnetKernels, adam,
};
use crate::Fused;

/// Which two-input (input, weight) operation a [`ConvBackward`] differentiates.
#[derive(Clone, Copy, Debug)]
enum Conv {
    Depthwise(Geometry),
    Pointwise,
    Dense(Geometry),
}

impl Conv {
    fn forward<B: SepnetKernels>(self, x: FloatTensor<B>, w: FloatTensor<B>) -> FloatTensor<B> {
        match self {
            Conv::Depthwise(g) => B::depthwise_conv2d(x, w, g),
            Conv::Pointwise => B::pointwise_conv2d(x, w),
            Conv::Dense(g) => B::dense_conv2d(x, w, g),
        }
    }

    fn input_grad<B: SepnetKernels>(self, w: FloatTensor<B>, dy: FloatTensor<B>) -> FloatTensor<B> {
        match self {
            Conv::Depthwise(g) => B::depthwise_conv2d_input_grad(w, dy, g),
            Conv::Pointwise => B::pointwise_conv2d_input_grad(w, dy),
            Conv::Dense(g) => B::dense_conv2d_input_grad(w, dy, g),
        }
    }

    fn weight_grad<B: SepnetKernels>(
        self,
        x: FloatTensor<B>,
        dy: FloatTensor<B>,
    ) -> FloatTensor<B> {
        match self {
            Conv::Depthwise(g) => B::depthwise_conv2d_weight_grad(x, dy, g),
            Conv::Pointwise => B::pointwise_conv2d_weight_grad(x, dy),
            Conv::Dense(g) => B::dense_conv2d_weight_grad(x, dy, g),
        }
    }
}

#[derive(Debug)]
struct ConvBackward;

impl<B: SepnetKernels> Backward<B, 2> for ConvBackward {
    type State = (NodeId, NodeId, Conv);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_weight] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, conv) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, conv.input_grad::<B>(weight, grad.clone()));
        }
        if let Some(node) = node_weight {
            grads.register::<B>(node.id, conv.weight_grad::<B>(x, grad));
        }
    }
}

fn record_conv<B: SepnetKernels, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    conv: Conv,
) -> FloatTensor<Autodiff<B, C>> {
    match ConvBackward
        .prepare::<C>([x.node(), weight.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let weight_state = prep.checkpoint(&weight);
            let y = conv.forward::<B>(x.into_primitive(), weight.into_primitive());
            prep.finish((x_state, weight_state, conv), y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(conv.forward::<B>(x.into_primitive(), weight.into_primitive()))
        }
    }
}

#[derive(Debug)]
struct MaxPoolBackward;

impl<B: SepnetKernels> Backward<B, 1> for MaxPoolBackward {
    type State = (NodeId, Geometry);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, geometry) = ops.state;
        if let Some(node) = node_x {
            let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
            grads.register::<B>(node.id, B::max_pool_input_grad(x, grad, geometry));
        }
    }
}

/// BatchNorm's backward: the batch statistics of the forward pass come along in the state.
#[derive(Debug)]
struct NormBackward;

/// What BatchNorm's backward needs: checkpoints of `x`, `γ`, `β`, the batch statistics and
/// the settings.
#[derive(Clone, Debug)]
struct NormState<B: SepnetKernels> {
    inputs: [NodeId; 3],
    mean: FloatTensor<B>,
    variance: FloatTensor<B>,
    epsilon: f64,
    activation: Fused,
}

impl<B: SepnetKernels> Backward<B, 3> for NormBackward {
    type State = NormState<B>;

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let s = ops.state;
        let [x, gamma, beta] = s
            .inputs
            .map(|id| checkpointer.retrieve_node_output::<FloatTensor<B>>(id));
        let g = B::fused_batch_norm_grads(
            x,
            gamma,
            beta,
            s.mean,
            s.variance,
            s.epsilon,
            s.activation,
            grad,
        );
        for (node, grad) in [(node_x, g.x), (node_gamma, g.gamma), (node_beta, g.beta)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// Bias and activation's backward: the output (after the activation) is all it needs.
#[derive(Debug)]
struct BiasActBackward;

impl<B: SepnetKernels> Backward<B, 2> for BiasActBackward {
    type State = (FloatTensor<B>, Fused);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        _checkpointer: &mut Checkpointer,
    ) {
        let [node_x, node_bias] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (output, activation) = ops.state;
        let g = B::bias_activation_grads(output, grad, activation);
        for (node, grad) in [(node_x, g.x), (node_bias, g.bias)] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: SepnetKernels, C: CheckpointStrategy> SepnetKernels for Autodiff<B, C> {
    fn bias_activation(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activation: Fused,
    ) -> FloatTensor<Self> {
        let prepared = BiasActBackward
            .prepare::<C>([x.node(), bias.node()])
            .compute_bound()
            .stateful();
        match prepared {
            OpsKind::Tracked(prep) => {
                let out = B::bias_activation(x.into_primitive(), bias.into_primitive(), activation);
                prep.finish((out.clone(), activation), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::bias_activation(
                x.into_primitive(),
                bias.into_primitive(),
                activation,
            )),
        }
    }

    fn separable_inference(
        x: FloatTensor<Self>,
        dw_weight: FloatTensor<Self>,
        dw_bias: FloatTensor<Self>,
        pw_weight: FloatTensor<Self>,
        pw_bias: FloatTensor<Self>,
        geometry: Geometry,
        activations: [Fused; 2],
    ) -> FloatTensor<Self> {
        // Recorded as its differentiable parts.
        let t = Self::depthwise_conv2d(x, dw_weight, geometry);
        let t = Self::bias_activation(t, dw_bias, activations[0]);
        let y = Self::pointwise_conv2d(t, pw_weight);
        Self::bias_activation(y, pw_bias, activations[1])
    }

    fn adam_update(
        param: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        coefficients: adam::Coefficients,
    ) -> AdamUpdate<Self> {
        // An optimizer step is not differentiated: plain values in, plain values out.
        let out = B::adam_update(
            Self::inner(param),
            Self::inner(grad),
            Self::inner(moment_1),
            Self::inner(moment_2),
            coefficients,
        );
        AdamUpdate {
            param: Self::from_inner(out.param),
            moment_1: Self::from_inner(out.moment_1),
            moment_2: Self::from_inner(out.moment_2),
        }
    }

    fn bias_activation_grads(
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        activation: Fused,
    ) -> BiasGrads<Self> {
        let g = B::bias_activation_grads(Self::inner(output), Self::inner(output_grad), activation);
        BiasGrads {
            x: Self::from_inner(g.x),
            bias: Self::from_inner(g.bias),
        }
    }

    fn fused_batch_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f64,
        activation: Fused,
    ) -> NormTrain<Self> {
        let prepared = NormBackward
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful();
        let (output, mean, variance) = match prepared {
            OpsKind::Tracked(mut prep) => {
                let inputs = [
                    prep.checkpoint(&x),
                    prep.checkpoint(&gamma),
                    prep.checkpoint(&beta),
                ];
                let out = B::fused_batch_norm(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    activation,
                );
                let state = NormState {
                    inputs,
                    mean: out.mean.clone(),
                    variance: out.variance.clone(),
                    epsilon,
                    activation,
                };
                (prep.finish(state, out.output), out.mean, out.variance)
            }
            OpsKind::UnTracked(prep) => {
                let out = B::fused_batch_norm(
                    x.into_primitive(),
                    gamma.into_primitive(),
                    beta.into_primitive(),
                    epsilon,
                    activation,
                );
                (prep.finish(out.output), out.mean, out.variance)
            }
        };
        NormTrain {
            output,
            mean: Self::from_inner(mean),
            variance: Self::from_inner(variance),
        }
    }

    fn fused_batch_norm_grads(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        epsilon: f64,
        activation: Fused,
        output_grad: FloatTensor<Self>,
    ) -> NormGrads<Self> {
        let g = B::fused_batch_norm_grads(
            Self::inner(x),
            Self::inner(gamma),
            Self::inner(beta),
            Self::inner(mean),
            Self::inner(variance),
            epsilon,
            activation,
            Self::inner(output_grad),
        );
        NormGrads {
            x: Self::from_inner(g.x),
            gamma: Self::from_inner(g.gamma),
            beta: Self::from_inner(g.beta),
        }
    }

    fn depthwise_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        g: Geometry,
    ) -> FloatTensor<Self> {
        record_conv::<B, C>(x, w, Conv::Depthwise(g))
    }

    fn pointwise_conv2d(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        record_conv::<B, C>(x, w, Conv::Pointwise)
    }

    fn few_rows_matmul(x: FloatTensor<Self>, w: FloatTensor<Self>) -> FloatTensor<Self> {
        // Training takes burn's product and its gradients.
        <Self as FloatTensorOps<Self>>::float_matmul(x, w)
    }

    fn dense_conv2d(x: FloatTensor<Self>, w: FloatTensor<Self>, g: Geometry) -> FloatTensor<Self> {
        record_conv::<B, C>(x, w, Conv::Dense(g))
    }

    fn max_pool(x: FloatTensor<Self>, g: Geometry) -> FloatTensor<Self> {
        match MaxPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                prep.finish((x_state, g), B::max_pool(x.into_primitive(), g))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::max_pool(x.into_primitive(), g)),
        }
    }

    fn depthwise_conv2d_input_grad(
        w: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        g: Geometry,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::depthwise_conv2d_input_grad(
            Self::inner(w),
            Self::inner(dy),
            g,
        ))
    }

    fn depthwise_conv2d_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        g: Geometry,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::depthwise_conv2d_weight_grad(
            Self::inner(x),
            Self::inner(dy),
            g,
        ))
    }

    fn pointwise_conv2d_input_grad(
        w: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::pointwise_conv2d_input_grad(
            Self::inner(w),
            Self::inner(dy),
        ))
    }

    fn pointwise_conv2d_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::pointwise_conv2d_weight_grad(
            Self::inner(x),
            Self::inner(dy),
        ))
    }

    fn dense_conv2d_input_grad(
        w: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        g: Geometry,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::dense_conv2d_input_grad(
            Self::inner(w),
            Self::inner(dy),
            g,
        ))
    }

    fn dense_conv2d_weight_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        g: Geometry,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::dense_conv2d_weight_grad(
            Self::inner(x),
            Self::inner(dy),
            g,
        ))
    }

    fn max_pool_input_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        g: Geometry,
    ) -> FloatTensor<Self> {
        Self::from_inner(B::max_pool_input_grad(Self::inner(x), Self::inner(dy), g))
    }

    fn to_blocked(x: FloatTensor<Self>, lanes: usize) -> FloatTensor<Self> {
        let dims = x.shape().dims::<4>();
        blocked::convert::<B, C>(x, blocked::Convert::ToBlocked { dims, lanes })
    }

    fn to_blocked_bias_act(
        x: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        activation: Fused,
        lanes: usize,
    ) -> FloatTensor<Self> {
        blocked::epilogue_to_blocked::<B, C>([x, bias], activation, lanes)
    }

    fn to_blocked_bias_act_grads(
        output: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        dims: [usize; 4],
        activation: Fused,
    ) -> BiasGrads<Self> {
        // Not differentiated again: plain values in, plain values out.
        let g =
            B::to_blocked_bias_act_grads(Self::inner(output), Self::inner(dy), dims, activation);
        BiasGrads {
            x: Self::from_inner(g.x),
            bias: Self::from_inner(g.bias),
        }
    }

    fn from_blocked(x: FloatTensor<Self>, dims: [usize; 4]) -> FloatTensor<Self> {
        let lanes = x.shape().dims::<4>()[3];
        blocked::convert::<B, C>(x, blocked::Convert::FromBlocked { dims, lanes })
    }

    fn blocked_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        g: Geometry,
        activation: Fused,
    ) -> FloatTensor<Self> {
        blocked::conv::<B, C>([x, weight, bias], g, activation)
    }

    fn blocked_conv2d_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        g: Geometry,
        activation: Fused,
    ) -> BlockedConvGrads<Self> {
        // Not differentiated again: plain values in, plain values out.
        let [x, weight, output, dy] = [x, weight, output, dy].map(Self::inner);
        let d = B::blocked_conv2d_grads(x, weight, output, dy, g, activation);
        BlockedConvGrads {
            x: Self::from_inner(d.x),
            weight: Self::from_inner(d.weight),
            bias: Self::from_inner(d.bias),
        }
    }

    fn blocked_depthwise(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        g: Geometry,
    ) -> FloatTensor<Self> {
        blocked::depthwise::<B, C>([x, weight], g)
    }

    fn blocked_depthwise_grads(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        g: Geometry,
    ) -> BlockedDepthwiseGrads<Self> {
        // Not differentiated again: plain values in, plain values out.
        let [x, weight, dy] = [x, weight, dy].map(Self::inner);
        let d = B::blocked_depthwise_grads(x, weight, dy, g);
        BlockedDepthwiseGrads {
            x: Self::from_inner(d.x),
            weight: Self::from_inner(d.weight),
        }
    }

    fn blocked_max_pool(x: FloatTensor<Self>, dims: [usize; 4]) -> FloatTensor<Self> {
        blocked::max_pool::<B, C>(x, dims)
    }

    fn blocked_max_pool_input_grad(
        x: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        dims: [usize; 4],
    ) -> FloatTensor<Self> {
        Self::from_inner(B::blocked_max_pool_input_grad(
            Self::inner(x),
            Self::inner(dy),
            dims,
        ))
    }
}
