//! Arguments shared by several commands.

use sepnet_model::layers::DepthwiseFans;
use sepnet_model::{Backend, ModelOptions};

/// How to pick and shape a model.
#[derive(clap::Args, Clone, Debug)]
pub struct ModelArgs {
    /// A built-in model name (see `sepnet models`) or an architecture spec.
    pub model: String,
    /// Input size HxWxC, e.g. 32x32x3 (default: the model's own; 28x28x1 for specs).
    #[arg(long, value_parser = parse_input)]
    pub input: Option<[usize; 3]>,
    /// Number of classes (sets the final dense layer).
    #[arg(long)]
    pub classes: Option<usize>,
    /// MobileNet width multiplier α in (0, 1]: every layer keeps int(c·α) channels.
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f64,
    /// MobileNet resolution multiplier ρ in (0, 1]: input side × ρ.
    #[arg(long, default_value_t = 1.0)]
    pub rho: f64,
    /// VGG block list as FILTERSxCONVS,..., e.g. 64x2,128x2,256x2.
    #[arg(long, value_parser = parse_blocks)]
    pub blocks: Option<Vec<(usize, usize)>>,
    /// Depthwise kernels' initialisation: group (Glorot, k·k in; the default), keras (Glorot,
    /// k·k·channels in) or torch (PyTorch's grouped-conv default, U(±1/√(k·k))).
    #[arg(long)]
    pub depthwise_fans: Option<DepthwiseFans>,
}

impl ModelArgs {
    /// The options for `resolve_model`.
    pub fn options(&self) -> ModelOptions {
        ModelOptions {
            alpha: self.alpha,
            rho: self.rho,
            classes: self.classes,
            input: self.input,
            vgg_blocks: self.blocks.clone(),
            depthwise_fans: self.depthwise_fans,
        }
    }
}

/// A `--models` list: built-in names separated by commas; specs, which contain commas,
/// separated by `;` or given by repeating the flag.
pub fn split_models(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|m| {
            let separator = if m.contains(';') || m.contains(':') {
                ';'
            } else {
                ','
            };
            m.split(separator)
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// `--backend` parsing with the list of what this build has.
pub fn parse_backend(text: &str) -> Result<Backend, String> {
    text.parse()
}

pub fn parse_input(text: &str) -> Result<[usize; 3], String> {
    let parts: Vec<&str> = text.split('x').collect();
    let numbers: Result<Vec<usize>, _> = parts.iter().map(|p| p.parse::<usize>()).collect();
    match numbers.as_deref() {
        Ok([h, w, c]) if *h > 0 && *w > 0 && *c > 0 => Ok([*h, *w, *c]),
        _ => Err(format!(
            "expected HxWxC with positive integers, e.g. 32x32x3; got `{text}`"
        )),
    }
}

fn parse_blocks(text: &str) -> Result<Vec<(usize, usize)>, String> {
    text.split(',')
        .map(|block| {
            let parsed = block
                .split_once('x')
                .and_then(|(f, n)| Some((f.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
            match parsed {
                Some((f, n)) if f > 0 && n > 0 => Ok((f, n)),
                _ => Err(format!(
                    "expected FILTERSxCONVS blocks such as 64x2,128x2; got `{block}`"
                )),
            }
        })
        .collect()
}
