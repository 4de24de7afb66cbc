//! The page frame and small shared pieces of markup.

use maud::{DOCTYPE, Markup, html};

/// Who is signed in, for the header.
pub struct Frame<'a> {
    /// `root of 1416…` or `alice @ 1416…`.
    pub who: &'a str,
    /// The session's CSRF token (for the sign-out form).
    pub csrf: &'a str,
    /// Which section is current (`buckets`, `kms`, `ram`).
    pub section: &'a str,
}

/// A full page.
pub fn page(frame: Option<&Frame<'_>>, title: &str, notice: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Arca" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                header {
                    a.brand href="/" { "Arca" }
                    @if let Some(f) = frame {
                        nav aria-label="Main" {
                            a href="/buckets" aria-current=[(f.section == "buckets").then_some("page")] { "Buckets" }
                            a href="/kms" aria-current=[(f.section == "kms").then_some("page")] { "KMS keys" }
                            a href="/ram" aria-current=[(f.section == "ram").then_some("page")] { "RAM" }
                        }
                        span.who { (f.who) }
                        form.inline method="post" action="/logout" {
                            (csrf_field(f.csrf))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    @if let Some(n) = notice {
                        p.notice role="status" { (n) }
                    }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field every form carries.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// An error shown next to what caused it.
pub fn field_error(id: &str, message: Option<&str>) -> Markup {
    html! {
        @if let Some(m) = message {
            p.error id=(id) role="alert" { (m) }
        }
    }
}

/// Human-readable size.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{bytes} B") } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// `2026-11-27 03:21:13 UTC`.
pub fn time(unix: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC")).unwrap_or_default()
}

/// Percent-encodes a query value.
pub fn q(s: &str) -> String {
    arca_wire::encode(s, false)
}

/// Now as ISO 8601 (`acs:CurrentTime`).
pub fn iso_now() -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    time::OffsetDateTime::now_utc().format(fmt).unwrap_or_default()
}
