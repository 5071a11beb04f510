//! `weft graph --format svg`: the wiring drawn by layout-rs, so a picture
//! needs no graphviz. The input is `Plan::graph`'s DOT, the one source of
//! the picture for both formats.

use anyhow::{Result, anyhow};
use layout::backends::svg::SVGWriter;
use layout::gv::{DotParser, GraphBuilder};

/// Draws `dot` as an SVG document.
pub fn svg(dot: &str) -> Result<String> {
    let mut parser = DotParser::new(dot);
    let tree = parser.process().map_err(|e| anyhow!("weft's own DOT did not parse ({e}); this is a bug in weft"))?;
    let mut builder = GraphBuilder::new();
    builder.visit_graph(&tree);
    let mut graph = builder.get();
    let mut out = SVGWriter::new();
    graph.do_it(false, false, false, &mut out);
    Ok(out.finalize())
}
