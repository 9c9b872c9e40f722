import PortalHTTP2
import PortalProtoJSON
import PortalRPC

/// The Connect protocol with JSON over a service's routes: unary `POST` (`application/json`), `GET`
/// for methods without side effects, and server streaming (`application/connect+json` envelopes).
struct ConnectEndpoint: Sendable {
    let runner: WebCallRunner
    let codec: ProtoJSONCodec
    let sessions: SessionCookies

    /// Serves one Connect request for `route`.
    func serve(_ request: WebRequest, route: RPCRoute, responder: some WebResponder) async {
        let requestID = request.header("x-request-id").flatMap(RequestID.accepting) ?? RequestIDs.next()
        guard let method = codec.method(path: route.method.path) else {
            await respond(
                error: RPCError(.unimplemented, "unknown method \(route.method.path)"), requestID: requestID,
                responder: responder)
            return
        }
        let prepared: (input: [UInt8], streaming: Bool, deadline: ContinuousClock.Instant?)
        do {
            prepared = try prepare(request, route: route, method: method)
        } catch {
            await respond(error: error.asRPCError, requestID: requestID, responder: responder)
            return
        }
        let context = ServerContext(
            method: route.method,
            requestMetadata: WebCallRunner.metadata(of: request, sessionToken: sessions.token(in: request)),
            deadline: prepared.deadline, peer: request.peer, requestID: requestID, transport: request.transport)
        if prepared.streaming {
            await serveStream(route, method: method, input: prepared.input, context: context, responder: responder)
        } else {
            await serveUnary(
                route, method: method, input: prepared.input, context: context, request: request, responder: responder)
        }
    }

    /// Checks the request's protocol headers and turns its JSON into the method's binary request.
    private func prepare(
        _ request: WebRequest, route: RPCRoute, method: ProtoJSONMethod
    ) throws -> (input: [UInt8], streaming: Bool, deadline: ContinuousClock.Instant?) {
        var deadline: ContinuousClock.Instant?
        if let text = request.header("connect-timeout-ms") {
            guard let timeout = ConnectProtocol.timeout(text) else {
                throw RPCError.invalidArgument(
                    field: "connect-timeout-ms", "expected 1 to 10 digits, not \(RPCError.quote(text))")
            }
            deadline = .now + timeout
        }
        let json: [UInt8]
        let streaming: Bool
        if request.method == "GET" {
            // The generator marks methods declared `idempotency_level = NO_SIDE_EFFECTS`.
            guard route.method.hasNoSideEffects, route.method.kind == .unary else {
                throw RPCError(.unimplemented, "\(route.method.path) changes data; call it with POST")
            }
            guard request.queryValue("connect") == "v1" else {
                throw RPCError.invalidArgument(field: "connect", "must be v1")
            }
            guard request.queryValue("encoding") == "json" else {
                throw RPCError.invalidArgument(field: "encoding", "only json is served here")
            }
            if let compression = request.queryValue("compression"), compression != "identity" {
                throw RPCError(
                    .unimplemented, "compression: \(RPCError.quote(compression)) is not supported; send identity")
            }
            let message = request.queryValue("message") ?? "{}"
            if request.queryValue("base64") == "1" {
                json = Base64.decode(message)
            } else {
                json = Array(message.utf8)
            }
            streaming = false
        } else {
            guard request.header(ConnectProtocol.versionHeader) == "1" else {
                throw RPCError.invalidArgument(field: ConnectProtocol.versionHeader, "must be 1 (the Connect protocol)")
            }
            switch request.mediaType {
            case ConnectProtocol.unaryJSON:
                guard !method.serverStreaming, !method.clientStreaming else {
                    throw RPCError.invalidArgument(
                        field: "content-type", "\(route.method.path) streams; send \(ConnectProtocol.streamingJSON)")
                }
                if let encoding = request.header("content-encoding"), encoding != "identity" {
                    throw RPCError(
                        .unimplemented, "content-encoding: \(RPCError.quote(encoding)) is not supported; send identity")
                }
                json = request.body
                streaming = false
            case ConnectProtocol.streamingJSON:
                guard method.serverStreaming, !method.clientStreaming else {
                    throw RPCError.invalidArgument(
                        field: "content-type", "\(route.method.path) is unary; send \(ConnectProtocol.unaryJSON)")
                }
                if let encoding = request.header("connect-content-encoding"), encoding != "identity" {
                    throw RPCError(
                        .unimplemented,
                        "connect-content-encoding: \(RPCError.quote(encoding)) is not supported; send identity")
                }
                json = try ConnectProtocol.singleEnvelope(request.body)
                streaming = true
            default:
                throw RPCError.invalidArgument(
                    field: "content-type",
                    "expected \(ConnectProtocol.unaryJSON) or \(ConnectProtocol.streamingJSON), not \(RPCError.quote(request.header("content-type") ?? "none"))"
                )
            }
        }
        do {
            return (
                try codec.binary(fromJSON: json.isEmpty ? Array("{}".utf8) : json, messageType: method.inputType),
                streaming, deadline
            )
        } catch {
            throw RPCError(.invalidArgument, "\(error)")
        }
    }

    private func serveUnary(
        _ route: RPCRoute, method: ProtoJSONMethod, input: [UInt8], context: ServerContext, request: WebRequest,
        responder: some WebResponder
    ) async {
        let response = Locked<[UInt8]?>(nil)
        if let error = await runner.run(
            route, request: input, context: context, onResponse: { message in response.withLock { $0 = message } })
        {
            let cookie = sessions.afterFailure(path: route.method.path).map { [("set-cookie", $0)] } ?? []
            await respond(error: error, requestID: context.requestID, responder: responder, extraHeaders: cookie)
            return
        }
        guard var output = response.withLock({ $0 }) else {
            await respond(
                error: RPCError(.internal, "the method sent no response"), requestID: context.requestID,
                responder: responder)
            return
        }
        var headers = apiHeaders(contentType: ConnectProtocol.unaryJSON, requestID: context.requestID)
        headers += HTTPMetadata.fields(context.responseHeaders)
        headers += HTTPMetadata.fields(context.responseTrailers).map { ("trailer-\($0.0)", $0.1) }
        do {
            if let cookie = try sessions.moveToCookie(path: route.method.path, response: &output) {
                headers.append(("set-cookie", cookie))
                await endReplacedSession(of: request, path: route.method.path, requestID: context.requestID)
            }
            let json = try codec.json(fromBinary: output, messageType: method.outputType)
            await responder.respond(status: 200, headers: headers, body: json)
        } catch {
            await respond(
                error: RPCError(.internal, "the response could not be written as JSON: \(error)"),
                requestID: context.requestID, responder: responder)
        }
    }

    private func serveStream(
        _ route: RPCRoute, method: ProtoJSONMethod, input: [UInt8], context: ServerContext, responder: some WebResponder
    ) async {
        let headers = apiHeaders(contentType: ConnectProtocol.streamingJSON, requestID: context.requestID)
        let stream = DeferredStream(responder: responder) { headers + HTTPMetadata.fields(context.responseHeaders) }
        let codec = codec
        let error = await runner.run(route, request: input, context: context) { message in
            let json: [UInt8]
            do {
                json = try codec.json(fromBinary: message, messageType: method.outputType)
            } catch {
                throw RPCError(.internal, "a response could not be written as JSON: \(error)")
            }
            try await stream.write(ConnectProtocol.envelope(flags: 0, json))
        }
        do {
            let end = ConnectProtocol.endOfStreamJSON(
                error: error, trailers: error == nil ? context.responseTrailers : [:])
            try await stream.write(ConnectProtocol.envelope(flags: ConnectProtocol.endStreamFlag, Array(end.utf8)))
            await responder.finishStream()
        } catch {
            await responder.abortStream()  // the client is gone or too slow to take the end of the stream
        }
    }

    /// A unary error: Connect's HTTP status and JSON body.
    /// A sign-in that replaces the browser's session cookie (switching organization, accepting an invite
    /// while signed in) ends the session the old cookie held: no browser holds it any more, so it
    /// must not stay valid until it expires. A failure here leaves the new session in place.
    private func endReplacedSession(of request: WebRequest, path: String, requestID: String) async {
        guard sessions.startsSession(path: path), request.header("authorization") == nil,
            let replaced = sessions.token(in: request),
            let logout = runner.routes[SessionCookies.logoutPath]
        else { return }
        let context = ServerContext(
            method: logout.method, requestMetadata: WebCallRunner.metadata(of: request, sessionToken: replaced),
            deadline: .now + .seconds(5), peer: request.peer, requestID: requestID, transport: request.transport)
        _ = await runner.run(logout, request: [], context: context, onResponse: { _ in })
    }

    func respond(
        error: RPCError, requestID: String, responder: some WebResponder, extraHeaders: [(String, String)] = []
    ) async {
        var headers = apiHeaders(contentType: ConnectProtocol.unaryJSON, requestID: requestID) + extraHeaders
        headers += HTTPMetadata.fields(error.metadata)
        await responder.respond(
            status: ConnectProtocol.httpStatus(error.code), headers: headers,
            body: Array(ConnectProtocol.errorJSON(error).utf8))
    }

    private func apiHeaders(contentType: String, requestID: String) -> [(String, String)] {
        [("content-type", contentType), ("cache-control", "no-store"), ("x-request-id", requestID)]
    }
}

/// Fresh request ids for calls on the web listener.
enum RequestIDs {
    private static let generator = Locked(RequestID.Generator())

    /// The next id.
    static func next() -> String { generator.withLock { $0.next() } }
}

extension Error {
    /// This error as the client sees it.
    var asRPCError: RPCError {
        (self as? any RPCErrorConvertible)?.rpcError ?? RPCError(.internal, "\(self)", cause: self)
    }
}
