import Logging
import PortalHTTP2
import PortalProtoJSON
import PortalRPC

/// Everything the web listener serves: the gateway's methods over Connect, CSV downloads and the
/// embedded portal, behind the browser security rules.
public struct WebApplication: Sendable {
    private let connect: ConnectEndpoint
    private let downloads: CSVDownloads
    private let site: StaticSite
    private let routes: [String: RPCRoute]
    private let servicePrefixes: [String]

    /// An application over `services`' routes, run through `interceptors` (and `tracer`) as gRPC calls are;
    /// `codec` converts their messages to and from JSON. It serves the portal embedded in the
    /// binary, or with `siteFolder` the files of that folder as they are at each request.
    public init(
        services: [any RPCService], interceptors: [any ServerInterceptor], observers: [any ServerCallObserver] = [],
        tracer: (any ServerCallTracer)? = nil, codec: ProtoJSONCodec, siteFolder: SiteFolder? = nil, logger: Logger
    ) {
        var routes: [String: RPCRoute] = [:]
        for service in services {
            for route in service.routes { routes[route.method.path] = route }
        }
        self.routes = routes
        servicePrefixes = services.map { "/\($0.serviceName)/" }
        let runner = WebCallRunner(
            routes: routes,
            executor: ServerCallExecutor(
                interceptors: interceptors, observers: observers, tracer: tracer, logger: logger))
        let sessions = SessionCookies()
        connect = ConnectEndpoint(runner: runner, codec: codec, sessions: sessions)
        downloads = CSVDownloads(runner: runner, codec: codec, sessions: sessions, connect: connect)
        site = siteFolder.map(StaticSite.init(folder:)) ?? StaticSite()
    }

    /// Answers one request.
    public func handle(_ request: WebRequest, responder: some WebResponder) async {
        let secured = SecuredResponder(
            base: responder, headers: BrowserSecurity.responseHeaders(overTLS: request.transport != .cleartext))
        let isAPI =
            routes[request.path] != nil || servicePrefixes.contains(where: request.path.hasPrefix)
            || CSVDownloads.exports[request.path] != nil
        if let refusal = BrowserSecurity.crossSiteRefusal(request, forPage: !isAPI) {
            await connect.respond(
                error: RPCError(.permissionDenied, refusal), requestID: RequestIDs.next(), responder: secured)
            return
        }
        if let route = routes[request.path] {
            guard request.method == "POST" || request.method == "GET" else {
                await secured.respond(
                    status: 405, headers: [("allow", "POST, GET"), ("content-type", "text/plain; charset=utf-8")],
                    body: Array("use POST (or GET for methods without side effects)\n".utf8))
                return
            }
            await connect.serve(request, route: route, responder: secured)
            return
        }
        if servicePrefixes.contains(where: request.path.hasPrefix) {
            await connect.respond(
                error: RPCError(.unimplemented, "unknown method \(request.path)"), requestID: RequestIDs.next(),
                responder: secured)
            return
        }
        guard request.method == "GET" || request.method == "HEAD" else {
            await secured.respond(
                status: 405, headers: [("allow", "GET, HEAD"), ("content-type", "text/plain; charset=utf-8")],
                body: Array("only GET and HEAD are served here\n".utf8))
            return
        }
        if await downloads.serve(request, responder: secured) { return }
        await site.serve(request, responder: secured)
    }
}

/// A responder adding the security headers to every response.
private struct SecuredResponder<Base: WebResponder>: WebResponder {
    let base: Base
    let headers: [(String, String)]

    func respond(status: Int, headers: [(String, String)], body: [UInt8]) async {
        await base.respond(status: status, headers: headers + self.headers, body: body)
    }

    func startStream(status: Int, headers: [(String, String)]) async throws {
        try await base.startStream(status: status, headers: headers + self.headers)
    }

    func write(_ part: [UInt8]) async throws { try await base.write(part) }
    func finishStream() async { await base.finishStream() }
    func abortStream() async { await base.abortStream() }
}
