//! The blocked-layout operations of [`SepnetKernels`] under autodiff: the conversions (each
//! the other's gradient), the convolution with its epilogue, the depthwise convolution and the 2×2 max pool.

use burn::backend::Autodiff;
use burn::backend::TensorMetadata;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::tensor::FloatTensor;

use super::{Geometry, SepnetKernels};
use crate::Fused;

/// A conversion between NCHW `dims` and blocks of `lanes` channels.
#[derive(Clone, Copy, Debug)]
pub(super) enum Convert {
    /// NCHW into blocks.
    ToBlocked { dims: [usize; 4], lanes: usize },
    /// Blocks back to NCHW.
    FromBlocked { dims: [usize; 4], lanes: usize },
}

impl Convert {
    fn run<B: SepnetKernels>(self, x: FloatTensor<B>) -> FloatTensor<B> {
        match self {
            Convert::ToBlocked { lanes, .. } => B::to_blocked(x, lanes),
            Convert::FromBlocked { dims, .. } => B::from_blocked(x, dims),
        }
    }

    fn inverse(self) -> Convert {
        match self {
            Convert::ToBlocked { dims, lanes } => Convert::FromBlocked { dims, lanes },
            Convert::FromBlocked { dims, lanes } => Convert::ToBlocked { dims, lanes },
        }
    }
}

#[derive(Debug)]
struct ConvertBackward;

impl<B: SepnetKernels> Backward<B, 1> for ConvertBackward {
    type State = Convert;

    fn backward(self, ops: Ops<Convert, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        if let Some(node) = node {
            grads.register::<B>(node.id, ops.state.inverse().run::<B>(grad));
        }
    }
}

/// Records `convert` of `x`.
pub(super) fn convert<B: SepnetKernels, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    convert: Convert,
) -> FloatTensor<Autodiff<B, C>> {
    match ConvertBackward
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(convert, convert.run::<B>(x.into_primitive())),
        OpsKind::UnTracked(prep) => prep.finish(convert.run::<B>(x.into_primitive())),
    }
}

/// The backward of a conversion with a convolution's epilogue: its blocked output (the
/// activation's mask), the NCHW dims and the activation.
#[derive(Debug)]
struct EpilogueBackward;

impl<B: SepnetKernels> Backward<B, 2> for EpilogueBackward {
    type State = (FloatTensor<B>, [usize; 4], Fused);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (output, dims, activation) = ops.state;
        let d = B::to_blocked_bias_act_grads(output, grad, dims, activation);
        for (node, grad) in ops.parents.into_iter().zip([d.x, d.bias]) {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// Records `act(x + bias)` into the blocked layout of `lanes`.
pub(super) fn epilogue_to_blocked<B: SepnetKernels, C: CheckpointStrategy>(
    [x, bias]: [FloatTensor<Autodiff<B, C>>; 2],
    activation: Fused,
    lanes: usize,
) -> FloatTensor<Autodiff<B, C>> {
    let dims = x.shape().dims::<4>();
    let prepared = EpilogueBackward
        .prepare::<C>([x.node(), bias.node()])
        .compute_bound()
        .stateful();
    let run = |x, bias| B::to_blocked_bias_act(x, bias, activation, lanes);
    match prepared {
        OpsKind::Tracked(prep) => {
            let y = run(x.into_primitive(), bias.into_primitive());
            prep.finish((y.clone(), dims, activation), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(run(x.into_primitive(), bias.into_primitive())),
    }
}

/// A blocked convolution's backward: its input and weight (checkpointed), its output (the
/// epilogue's mask) and settings.
#[derive(Debug)]
struct BlockedConvBackward;

impl<B: SepnetKernels> Backward<B, 3> for BlockedConvBackward {
    type State = (NodeId, NodeId, FloatTensor<B>, Geometry, Fused);

    fn backward(
        self,
        ops: Ops<Self::State, 3>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight, output, g, activation) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight);
        let d = B::blocked_conv2d_grads(x, weight, output, grad, g, activation);
        for (node, grad) in ops.parents.into_iter().zip([d.x, d.weight, d.bias]) {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// Records a blocked convolution with its bias and activation.
pub(super) fn conv<B: SepnetKernels, C: CheckpointStrategy>(
    [x, weight, bias]: [FloatTensor<Autodiff<B, C>>; 3],
    g: Geometry,
    activation: Fused,
) -> FloatTensor<Autodiff<B, C>> {
    let nodes = [x.node(), weight.node(), bias.node()];
    match BlockedConvBackward
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let (x_state, w_state) = (prep.checkpoint(&x), prep.checkpoint(&weight));
            let [x, weight, bias] = [x, weight, bias].map(|t| t.into_primitive());
            let y = B::blocked_conv2d(x, weight, bias, g, activation);
            prep.finish((x_state, w_state, y.clone(), g, activation), y)
        }
        OpsKind::UnTracked(prep) => {
            let [x, weight, bias] = [x, weight, bias].map(|t| t.into_primitive());
            prep.finish(B::blocked_conv2d(x, weight, bias, g, activation))
        }
    }
}

/// A blocked depthwise convolution's backward: its input and weight (checkpointed) and
/// geometry.
#[derive(Debug)]
struct BlockedDepthwiseBackward;

impl<B: SepnetKernels> Backward<B, 2> for BlockedDepthwiseBackward {
    type State = (NodeId, NodeId, Geometry);

    fn backward(
        self,
        ops: Ops<Self::State, 2>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let grad = grads.consume::<B>(&ops.node);
        let (x, weight, g) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight);
        let d = B::blocked_depthwise_grads(x, weight, grad, g);
        for (node, grad) in ops.parents.into_iter().zip([d.x, d.weight]) {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

/// Records a blocked depthwise convolution.
pub(super) fn depthwise<B: SepnetKernels, C: CheckpointStrategy>(
    [x, weight]: [FloatTensor<Autodiff<B, C>>; 2],
    g: Geometry,
) -> FloatTensor<Autodiff<B, C>> {
    match BlockedDepthwiseBackward
        .prepare::<C>([x.node(), weight.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let (x_state, w_state) = (prep.checkpoint(&x), prep.checkpoint(&weight));
            let y = B::blocked_depthwise(x.into_primitive(), weight.into_primitive(), g);
            prep.finish((x_state, w_state, g), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(B::blocked_depthwise(
            x.into_primitive(),
            weight.into_primitive(),
            g,
        )),
    }
}

#[derive(Debug)]
struct BlockedPoolBackward;

impl<B: SepnetKernels> Backward<B, 1> for BlockedPoolBackward {
    type State = (NodeId, [usize; 4]);

    fn backward(
        self,
        ops: Ops<Self::State, 1>,
        grads: &mut Gradients,
        checkpointer: &mut Checkpointer,
    ) {
        let [node] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, dims) = ops.state;
        if let Some(node) = node {
            let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
            let dx = B::blocked_max_pool_input_grad(x, grad, dims);
            grads.register::<B>(node.id, dx);
        }
    }
}

/// Records a blocked 2×2 max pool of NCHW `dims`.
pub(super) fn max_pool<B: SepnetKernels, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    dims: [usize; 4],
) -> FloatTensor<Autodiff<B, C>> {
    match BlockedPoolBackward
        .prepare::<C>([x.node()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            prep.finish(
                (x_state, dims),
                B::blocked_max_pool(x.into_primitive(), dims),
            )
        }
        OpsKind::UnTracked(prep) => prep.finish(B::blocked_max_pool(x.into_primitive(), dims)),
    }
}
