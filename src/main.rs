//! The `cairn` binary: parse the command line, then hand over to the node.
use clap::Parser;

fn main() -> anyhow::Result<()> {
    cairn::node::cli::run(cairn::node::cli::Cli::parse())
}
