//! `voicenav flows graph`: DOT of a flow, and SVG through Graphviz.

mod common;

use common::{have_tool, run};

#[test]
fn dot_of_the_main_flow() {
    let (code, dot, err) = run(
        &["flows", "graph", "flows/main.yaml", "--format", "dot"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(dot.starts_with("digraph \"main\""), "{dot}");
    assert!(
        dot.contains("\"main.greeting\" -> \"main.elderly\" [label=\"key 9\"]"),
        "{dot}"
    );
    assert!(
        dot.contains("\"main.greeting\" -> \"bank.credit_card\""),
        "subflow edge: {dot}"
    );
    assert!(
        dot.contains("\"bank.credit_card\" [style=\"rounded,dashed\""),
        "subflow node drawn dashed"
    );
}

#[test]
fn dot_of_a_subflow_by_name() {
    let (code, dot, err) = run(&["flows", "graph", "bank"], None);
    assert_eq!(code, 0, "{err}");
    assert!(dot.contains("\"bank.loan\""), "{dot}");
}

#[test]
fn svg_through_graphviz() {
    if !have_tool("dot", "svg_through_graphviz") {
        return;
    }
    let (code, svg, err) = run(
        &["flows", "graph", "flows/main.yaml", "--format", "svg"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        svg.contains("<svg") && svg.contains("main.greeting"),
        "{}",
        &svg[..svg.len().min(400)]
    );
}

#[test]
fn unknown_flow_is_a_clear_error() {
    let (code, _, err) = run(&["flows", "graph", "nosuchflow"], None);
    assert_ne!(code, 0);
    assert!(err.contains("no flow `nosuchflow`"), "{err}");
}
