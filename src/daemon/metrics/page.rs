//! Streaming a scrape: the page written family by family in pieces of ~256 KiB from a
//! snapshot of the targets, never held whole in memory.

use super::*;

/// Which families have at least one sample among `targets`.
pub(super) fn present_families(targets: &[Arc<TargetSeries>]) -> [bool; NFAM] {
    let mut present = [false; NFAM];
    for t in targets {
        for (f, p) in present.iter_mut().enumerate() {
            *p |= t.offsets[f] != t.offsets[f + 1];
        }
    }
    present
}

/// Size of the pieces a scrape is streamed in.
pub(super) const CHUNK: usize = 256 * 1024;

/// The per-target families of a snapshot, rendered in chunks of about [`CHUNK`] bytes: a
/// scrape never holds the whole page in memory.
pub(super) struct FamilyChunks {
    pub(super) targets: Vec<Arc<TargetSeries>>,
    pub(super) present: [bool; NFAM],
    /// Next (family, target) to write.
    pub(super) fam: usize,
    pub(super) idx: usize,
    /// Text before the families (self-metrics) and after them (`# EOF`).
    pub(super) head: Option<String>,
    pub(super) tail: Option<&'static str>,
}

impl FamilyChunks {
    pub(super) fn new(targets: Vec<Arc<TargetSeries>>, head: String, openmetrics: bool) -> Self {
        Self {
            present: present_families(&targets),
            targets,
            fam: 0,
            idx: 0,
            head: Some(head),
            tail: openmetrics.then_some("# EOF\n"),
        }
    }
}

impl Iterator for FamilyChunks {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        let mut out = self.head.take().unwrap_or_default();
        out.reserve(CHUNK + 1024);
        while self.fam < NFAM {
            let f = self.fam;
            if !self.present[f] {
                self.fam += 1;
                continue;
            }
            let (name, help) = FAMILIES[f];
            if self.idx == 0 {
                for (kw, text) in [("# HELP ", help), ("# TYPE ", "gauge")] {
                    out.push_str(kw);
                    out.push_str(PREFIX);
                    out.push('_');
                    out.push_str(name);
                    out.push(' ');
                    out.push_str(text);
                    out.push('\n');
                }
            }
            while let Some(t) = self.targets.get(self.idx) {
                self.idx += 1;
                for line in t.family(f).split_inclusive('\n') {
                    out.push_str(PREFIX);
                    out.push('_');
                    out.push_str(name);
                    out.push_str(&t.base);
                    out.push_str(line);
                }
                if out.len() >= CHUNK {
                    return Some(out);
                }
            }
            self.fam += 1;
            self.idx = 0;
        }
        if let Some(t) = self.tail.take() {
            out.push_str(t);
        }
        (!out.is_empty()).then_some(out)
    }
}
