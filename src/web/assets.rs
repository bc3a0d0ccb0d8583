//! The scripts and styles every page carries inline: kbatch's own, and the vendored libraries
//! (`assets/vendor/README.md` says which versions, and where their licences are).

/// What a template inlines.
pub struct Assets {
    pub css: &'static str,
    /// What the page scripts share (`kb`): before any of them.
    pub dom_js: &'static str,
    pub report_js: &'static str,
    pub index_js: &'static str,
    pub uplot_js: &'static str,
    pub uplot_css: &'static str,
    pub d3_hierarchy_js: &'static str,
}

pub const ASSETS: Assets = Assets {
    css: include_str!("../../assets/kbatch.css"),
    dom_js: include_str!("../../assets/dom.js"),
    report_js: include_str!("../../assets/report.js"),
    index_js: include_str!("../../assets/index.js"),
    uplot_js: include_str!("../../assets/vendor/uplot/uPlot.iife.min.js"),
    uplot_css: include_str!("../../assets/vendor/uplot/uPlot.min.css"),
    d3_hierarchy_js: include_str!("../../assets/vendor/d3-hierarchy/d3-hierarchy.min.js"),
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_inlined_asset_can_end_its_element_early() {
        for text in [
            ASSETS.css,
            ASSETS.dom_js,
            ASSETS.report_js,
            ASSETS.index_js,
            ASSETS.uplot_js,
            ASSETS.uplot_css,
            ASSETS.d3_hierarchy_js,
        ] {
            let lower = text.to_ascii_lowercase();
            assert!(!lower.contains("</script") && !lower.contains("</style"));
            assert!(!lower.contains("<!--"));
        }
    }
}
