internal import Foundation

/// The read-only status page (`GET /`): server-rendered HTML, no scripts, no external assets, every value escaped.
///
/// Served with a Content-Security-Policy that allows nothing but its own inline style (`default-src 'none'`), so
/// even a value that escaped escaping could not run or load anything.
public enum StatusPage {
    /// The page's Content-Security-Policy.
    public static let contentSecurityPolicy =
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'; frame-ancestors 'none'; "
        + "base-uri 'none'"

    /// HTML-escape `text` for element content and double-quoted attribute values.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // Control characters (but tab and newline) are shown as U+FFFD: they have no business in a page.
                if scalar.value < 0x20 && scalar != "\n" && scalar != "\t" || scalar.value == 0x7F {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// The page for `status`.
    public static func render(_ status: HostStatus) -> String {
        let e = escape
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>EnclaveKit clean room</title>
            <style>
            body{font-family:system-ui,sans-serif;margin:2rem;background:#f6f7f9;color:#1b1f24}
            h1{font-size:1.5rem;margin:0 0 .25rem}h2{font-size:1.1rem;margin-top:1.75rem}
            table{border-collapse:collapse;background:#fff;min-width:32rem}
            th,td{border:1px solid #d0d7de;padding:.35rem .7rem;text-align:left;vertical-align:top}
            th{background:#eaeef2}code{font-size:.85rem;word-break:break-all}
            .ok{color:#116329;font-weight:600}.no{color:#9a6700;font-weight:600}.bad{color:#cf222e;font-weight:600}
            .phase{display:inline-block;padding:.2rem .6rem;border-radius:1rem;background:#ddf4ff}
            </style></head><body>
            <h1>Clean room</h1>

            """
        guard let id = status.contractID else {
            html += "<p id=\"phase\" class=\"phase\">No contract submitted yet.</p>\n</body></html>\n"
            return html
        }
        html += "<p>Contract <strong>\(e(status.contractName ?? ""))</strong></p>\n"
        html += "<p>ID <code id=\"contract-id\">\(e(id))</code></p>\n"
        html += "<p>Phase: <span id=\"phase\" class=\"phase\">\(e(status.phase))</span></p>\n"
        html += "<h2>Parties</h2>\n<table id=\"parties\"><tr><th>Party</th><th>Roles</th><th>Contract</th></tr>\n"
        for party in status.parties {
            let state =
                if let reason = party.haltReason {
                    "<span class=\"bad\">halted</span> (\(e(reason)))"
                } else if party.signed {
                    "<span class=\"ok\">signed</span>"
                } else {
                    "<span class=\"no\">not signed</span>"
                }
            html += "<tr><td>\(e(party.name))</td><td>\(e(party.roles.joined(separator: ", ")))</td>"
            html += "<td>\(state)</td></tr>\n"
        }
        html += "</table>\n<h2>Data sets</h2>\n"
        html += "<table id=\"datasets\"><tr><th>Data set</th><th>Owner</th><th>Ciphertext</th><th>Rows</th>"
        html += "<th>Bad rows</th></tr>\n"
        for dataSet in status.dataSets {
            let stored =
                if dataSet.uploaded, let size = dataSet.size, let digest = dataSet.sha256 {
                    "\(size) bytes, SHA-256 <code>\(e(String(digest.prefix(16))))…</code>"
                } else {
                    "<span class=\"no\">not uploaded</span>"
                }
            html += "<tr><td>\(e(dataSet.name))</td><td>\(e(dataSet.owner))</td><td>\(stored)</td>"
            html += "<td>\(dataSet.rows.map(String.init) ?? "not loaded")</td>"
            html += "<td>\(dataSet.badRows.map(String.init) ?? "–")</td></tr>\n"
        }
        html += "</table>\n<h2>Clean room enclave</h2>\n<p id=\"enclave\">"
        if let report = status.enclave {
            html += "Enclave: \(e(report.phase.rawValue))"
            for halt in report.halts { html += "; halted by \(e(halt.party)) (\(e(halt.reason)))" }
        } else {
            html += "The enclave did not answer."
        }
        if let refusal = status.enclaveRefusal { html += " <span class=\"bad\">Refused: \(e(refusal))</span>" }
        html += "</p>\n<h2>Queries</h2>\n"
        if status.queries.isEmpty {
            html += "<p id=\"queries\">No query has run.</p>\n"
        } else {
            html += "<table id=\"queries\"><tr><th>#</th><th>Query</th><th>Time (UTC)</th>"
            html += "<th>Receipt</th></tr>\n"
            let format = ISO8601DateFormatter()
            for run in status.queries {
                let time = format.string(from: Date(timeIntervalSince1970: TimeInterval(run.time)))
                html += "<tr><td>\(run.sequence)</td><td>\(e(run.queryID))</td><td>\(e(time))</td>"
                html += "<td><code>\(e(run.id))</code></td></tr>\n"
            }
            html += "</table>\n"
        }
        html += "<h2>Privacy budget</h2>\n<p id=\"budget\">"
        if let budget = status.budgetLeftMilli, !budget.isEmpty {
            html += budget.sorted { $0.key < $1.key }.map { "\(e($0.key)): ε \(Double($0.value) / 1000) left" }
                .joined(separator: "; ")
        } else {
            html += "Not tracked yet."
        }
        html += "</p>\n</body></html>\n"
        return html
    }
}
