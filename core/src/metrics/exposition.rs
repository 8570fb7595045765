//! The Prometheus text format: metric families and their rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Counter or gauge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only grows (`_total`).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One metric family: its help, its kind and its samples.
#[derive(Debug, Clone)]
pub struct Family {
    /// The HELP text.
    pub help: &'static str,
    /// The TYPE.
    pub kind: Kind,
    /// `(labels, value)` pairs; labels as `key="value"` pairs.
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

/// All families of one collection, by metric name.
#[derive(Debug, Default, Clone)]
pub struct Exposition {
    /// Families by metric name, in name order.
    pub families: BTreeMap<&'static str, Family>,
}

impl Exposition {
    /// Adds one sample of the family `name` (made with `help` and `kind`
    /// if it is new) with `labels`: for a value [`counter`](Self::counter)
    /// and [`gauge`](Self::gauge) cannot carry (a fractional counter,
    /// labels beside `instance`).
    pub fn add(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: Kind,
        labels: Vec<(&'static str, String)>,
        value: f64,
    ) {
        self.families
            .entry(name)
            .or_insert_with(|| Family {
                help,
                kind,
                samples: Vec::new(),
            })
            .samples
            .push((labels, value));
    }

    /// Adds one sample of the counter `name` labelled with `instance`
    /// (`help` describes the family; the first one added is kept).
    pub fn counter(&mut self, name: &'static str, help: &'static str, instance: &str, v: u64) {
        self.add(
            name,
            help,
            Kind::Counter,
            vec![("instance", instance.to_string())],
            v as f64,
        );
    }

    /// Adds one sample of the gauge `name` labelled with `instance`.
    pub fn gauge(&mut self, name: &'static str, help: &'static str, instance: &str, v: f64) {
        self.add(
            name,
            help,
            Kind::Gauge,
            vec![("instance", instance.to_string())],
            v,
        );
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, fam) in &self.families {
            let kind = match fam.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {name} {}", fam.help);
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (labels, value) in &fam.samples {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape(v));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {}", format_value(*value));
            }
        }
        out
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}
