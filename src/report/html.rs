//! HTML for the summary page: escaping every value, cutting long ones, and the page's inline style sheet.

/// At most `n` characters of `s`, with an ellipsis when cut.
pub fn clip(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Escape text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

pub const STYLE: &str = "body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#1d2430;padding:0 16px}\
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d8dee6;padding-bottom:4px}\
.meta{color:#5b6675}table{border-collapse:collapse;width:100%;margin:6px 0}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #eef1f5;vertical-align:top}\
th{background:#f4f6f9;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.tiles{display:flex;gap:12px;flex-wrap:wrap}.tile{border:1px solid #d8dee6;border-radius:6px;padding:10px 14px;min-width:120px}\
.tile b{display:block;font-size:22px}.bad{color:#b42318}.warn{color:#b54708}.ok{color:#067647}.more{color:#5b6675;font-style:italic}\
details{margin:4px 0}.wide{overflow-x:auto}table.small{font-size:12px}table.small th{vertical-align:bottom}summary{cursor:pointer;font-weight:600}svg text{font:12px system-ui,sans-serif;fill:#1d2430}";

/// Horizontal bars of labelled counts as inline SVG (no script, nothing fetched), labels escaped.
pub fn bars(rows: &[(String, u64)], aria: &str) -> String {
    use std::fmt::Write as _;
    let max = rows.iter().map(|r| r.1).max().unwrap_or(0).max(1);
    // The labels' column fits the longest label (12px text, at most about 7px a character), so that a
    // label carrying four CIS versions does not run under its bar.
    let longest = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let label_w = (longest as f64 * 7.0 + 12.0).max(330.0).round();
    let (bar_w, row_h) = (560.0, 22.0);
    let height = row_h * rows.len() as f64 + 8.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"{}\" width=\"100%\" viewBox=\"0 0 {} {height}\">",
        esc(aria),
        label_w + bar_w + 60.0
    );
    for (i, (label, n)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        let w = bar_w * (*n as f64) / (max as f64);
        let _ = write!(
            s,
            "<text x=\"0\" y=\"{}\">{}</text><rect x=\"{label_w}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"#d92d20\" fill-opacity=\"0.75\"/><text x=\"{}\" y=\"{}\">{n}</text>",
            y + 14.0,
            esc(label),
            row_h - 6.0,
            label_w + w + 6.0,
            y + 14.0
        );
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"y\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;y&quot;"
        );
    }
}
