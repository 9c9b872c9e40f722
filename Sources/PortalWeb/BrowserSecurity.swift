import PortalHTTP2
import PortalRPC

/// What the web listener requires of browsers and tells them: same-origin requests only (by
/// `Sec-Fetch-Site`, else `Origin`), no CORS, and headers that lock the page down.
enum BrowserSecurity {
    /// The Content-Security-Policy of every response: the portal's own scripts and styles only, no
    /// inline code, DOM sinks closed by Trusted Types, never framed.
    static let contentSecurityPolicy = [
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "font-src 'self'",
        "connect-src 'self'", "manifest-src 'self'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
        "require-trusted-types-for 'script'", "trusted-types 'none'",
    ].joined(separator: "; ")

    /// Headers sent with every response; HSTS only over TLS.
    static func responseHeaders(overTLS: Bool) -> [(String, String)] {
        var headers = [
            ("content-security-policy", contentSecurityPolicy), ("x-content-type-options", "nosniff"),
            ("referrer-policy", "no-referrer"),
            ("x-frame-options", "DENY"), ("cross-origin-opener-policy", "same-origin"),
            ("cross-origin-resource-policy", "same-origin"),
            ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
        ]
        if overTLS { headers.append(("strict-transport-security", "max-age=31536000")) }
        return headers
    }

    /// Why the request is refused as cross-site, or nil when it may proceed.
    ///
    /// Browsers send `Sec-Fetch-Site`; older ones at least `Origin` on every cross-origin request that
    /// could change data. A request with neither comes from a program, not a page, and carries no
    /// browser's cookies on a victim's behalf.
    ///
    /// A page (`forPage`) may also be opened by a top-level navigation from another site — the link
    /// in an invite mail — since the session cookie is `SameSite=Strict` and does not travel with it.
    static func crossSiteRefusal(_ request: WebRequest, forPage: Bool) -> String? {
        let readOnly = request.method == "GET" || request.method == "HEAD"
        if let site = request.header("sec-fetch-site") {
            switch site {
            case "same-origin": return nil
            case "none" where readOnly: return nil  // the user typed the address or followed a bookmark
            case _
            where forPage && readOnly && request.header("sec-fetch-mode") == "navigate"
                && (request.header("sec-fetch-dest") ?? "document") == "document":
                return nil
            default: return "sec-fetch-site: \(site) requests are refused; the portal serves its own pages only"
            }
        }
        if let origin = request.header("origin"), !(forPage && readOnly) {
            let scheme = request.transport == .cleartext ? "http" : "https"
            guard let host = request.header("host"), origin == "\(scheme)://\(host)" else {
                return
                    "origin: requests from \(RPCError.quote(origin)) are refused; the portal serves its own pages only"
            }
        }
        return nil
    }
}
