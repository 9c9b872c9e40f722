import Foundation
import PortalHTTP2
import PortalRPC

/// One embedded file of the web portal.
struct EmbeddedFile: Sendable {
    /// The URL path, for example `/portal.js`.
    let path: String
    /// A strong validator of its bytes.
    let etag: String
    /// The bytes.
    let bytes: [UInt8]

    init(path: String, etag: String, base64: String) {
        self.path = path
        self.etag = etag
        bytes = Base64.decode(base64)
    }
}

/// Serves the web portal: its files with their content types and ETags, and `index.html` for every
/// other path without a file extension (the portal's own client-side routes). The files are the
/// copy embedded in the binary, or those of a folder read at each request.
struct StaticSite: Sendable {
    private enum Source: Sendable {
        case embedded([String: EmbeddedFile])
        case folder(SiteFolder)
    }

    private let source: Source

    /// A site of `files` (by default the portal embedded in the binary).
    init(files: [EmbeddedFile] = EmbeddedSite.files) {
        source = .embedded(Dictionary(files.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first }))
    }

    /// A site of the files in `folder`, read at each request.
    init(folder: SiteFolder) {
        source = .folder(folder)
    }

    /// Answers a `GET` or `HEAD` for `request.path`.
    func serve(_ request: WebRequest, responder: some WebResponder) async {
        guard let file = await file(for: request.path) else {
            await responder.respond(
                status: 404, headers: [("content-type", "text/plain; charset=utf-8")], body: Array("not found\n".utf8))
            return
        }
        // Files keep their names across releases, so browsers revalidate each time; the ETag makes that a 304.
        var headers = [
            ("content-type", Self.contentType(of: file.path)), ("etag", file.etag), ("cache-control", "no-cache"),
        ]
        if let tags = request.header("if-none-match"),
            tags.split(separator: ",").contains(where: {
                $0.trimmingCharacters(in: .whitespaces) == file.etag || $0 == "*"
            })
        {
            await responder.respond(status: 304, headers: headers.filter { $0.0 != "content-type" }, body: [])
            return
        }
        headers.append(("content-length", String(file.bytes.count)))
        await responder.respond(status: 200, headers: headers, body: request.method == "HEAD" ? [] : file.bytes)
    }

    private func file(for path: String) async -> EmbeddedFile? {
        let isRoute = !(path.split(separator: "/").last ?? "").contains(".")
        switch source {
        case .embedded(let files):
            if path == "/" { return files["/index.html"] }
            if let file = files[path] { return file }
            return isRoute ? files["/index.html"] : nil
        case .folder(let folder):
            switch await folder.lookUp(path == "/" ? "/index.html" : path) {
            case .file(let file): return file
            case .refused: return nil
            case .missing: break
            }
            guard isRoute, case .file(let index) = await folder.lookUp("/index.html") else { return nil }
            return index
        }
    }

    /// The content type of a file by its extension.
    static func contentType(of path: String) -> String {
        switch path.split(separator: ".").last.map({ $0.lowercased() }) {
        case "html": "text/html; charset=utf-8"
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "ico": "image/x-icon"
        case "json", "webmanifest": "application/json"
        case "woff2": "font/woff2"
        case "txt": "text/plain; charset=utf-8"
        default: "application/octet-stream"
        }
    }
}
