/// The activations sepnet's kernels apply while they write a layer's output, with the mask
/// their backward pass recomputes: the piecewise-linear ones. (sepnet-model's `Activation`
/// splits any activation into one of these and the rest.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Fused {
    /// Identity.
    #[default]
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
}
