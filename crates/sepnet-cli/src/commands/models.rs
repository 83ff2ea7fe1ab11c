//! `sepnet models`: the built-in networks at a glance.

use anyhow::Result;
use sepnet_model::{BUILTIN_MODELS, ModelOptions, Summary, group_thousands};
use sepnet_train::table::{Style, draw};
use serde::Serialize;

/// Arguments of `sepnet models`.
#[derive(clap::Args)]
pub struct Args {
    /// Print one JSON list instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Entry {
    name: &'static str,
    input: [usize; 3],
    classes: usize,
    params: u64,
    macs: u64,
    description: &'static str,
    spec: String,
}

/// Lists every built-in model.
pub fn run(args: Args) -> Result<()> {
    let entries: Vec<Entry> = BUILTIN_MODELS
        .iter()
        .map(|model| {
            let spec = model.spec(&ModelOptions::default())?;
            let summary = Summary::of(&spec).map_err(|e| anyhow::anyhow!(e.message))?;
            Ok(Entry {
                name: model.name,
                input: spec.input,
                classes: model.classes,
                params: summary.total_params,
                macs: summary.macs,
                description: model.description,
                spec: summary.spec,
            })
        })
        .collect::<Result<_>>()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    let rows = entries
        .iter()
        .map(|e| {
            let [h, w, c] = e.input;
            vec![
                e.name.to_string(),
                format!("{h}x{w}x{c}"),
                group_thousands(e.params),
                group_thousands(e.macs),
                e.description.to_string(),
            ]
        })
        .collect();
    let header = ["model", "input", "params", "MACs", "description"];
    print!("{}", draw(Style::Plain, &header, &["params", "MACs"], rows));
    println!(
        "\nMACs: multiply-accumulates for one image. `sepnet summary MODEL` shows every layer and the spec."
    );
    Ok(())
}
