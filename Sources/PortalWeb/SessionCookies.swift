import Foundation
import PortalAPI
import PortalHTTP2
import PortalRPC

/// Browser sessions: `Login` and `AcceptInvite` on the web listener put the session token in an
/// `HttpOnly`, `Secure`, `SameSite=Strict` cookie instead of the response body, requests carrying
/// the cookie act with its token, and `Logout` clears it. API clients keep using bearer tokens.
struct SessionCookies: Sendable {
    /// The cookie's name; `__Host-` makes browsers refuse it unless it is `Secure`, host-only and on `/`.
    static let name = "__Host-portal-session"

    private static let login = "/portal.gateway.v1.PortalService/Login"
    private static let acceptInvite = "/portal.gateway.v1.PortalService/AcceptInvite"
    private static let logout = logoutPath
    /// The method that ends a session.
    static let logoutPath = "/portal.gateway.v1.PortalService/Logout"

    /// The clock deciding cookie lifetimes, in Unix seconds.
    var now: @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) }

    /// The session token in the request's cookie, if any.
    func token(in request: WebRequest) -> String? {
        for (name, value) in request.headers where name == "cookie" {
            for pair in value.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == Self.name else { continue }
                let token = parts[1].trimmingCharacters(in: .whitespaces)
                if !token.isEmpty { return token }
            }
        }
        return nil
    }

    /// For sign-in methods, takes the session token out of `response` and returns the `Set-Cookie`
    /// value carrying it; for `Logout`, the value that clears the cookie; nil for other methods.
    func moveToCookie(path: String, response: inout [UInt8]) throws -> String? {
        switch path {
        case Self.login:
            return try moveToken(
                Portal_Gateway_V1_LoginResponse.self, in: &response, token: \.sessionToken, expiresAt: \.expiresAt)
        case Self.acceptInvite:
            return try moveToken(
                Portal_Gateway_V1_AcceptInviteResponse.self, in: &response, token: \.sessionToken,
                expiresAt: \.expiresAt)
        case Self.logout:
            return Self.clearing
        default:
            return nil
        }
    }

    /// Whether `path` is a sign-in method, whose success gives the browser a new session cookie.
    func startsSession(path: String) -> Bool {
        path == Self.login || path == Self.acceptInvite
    }

    /// The `Set-Cookie` value for a failed call: `Logout` clears the cookie even when its session had
    /// already ended, so the browser forgets it; nil for other methods.
    func afterFailure(path: String) -> String? {
        path == Self.logout ? Self.clearing : nil
    }

    private static let clearing = "\(name)=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict"

    /// Clears the response's session token (re-encoding it) and returns the cookie carrying it; nil when it has none.
    private func moveToken<Response: RPCMessage>(
        _ type: Response.Type, in response: inout [UInt8], token: WritableKeyPath<Response, String>,
        expiresAt: KeyPath<Response, Google_Protobuf_Timestamp?>
    ) throws -> String? {
        var message = try Response(rpcBytes: response)
        guard !message[keyPath: token].isEmpty else { return nil }
        let cookie = setCookie(message[keyPath: token], expiresAt: message[keyPath: expiresAt]?.seconds)
        message[keyPath: token] = ""
        response = message.rpcBytes()
        return cookie
    }

    private func setCookie(_ token: String, expiresAt: Int64?) -> String {
        let lifetime = max(0, (expiresAt ?? now()) - now())
        return "\(Self.name)=\(token); Path=/; Max-Age=\(lifetime); Secure; HttpOnly; SameSite=Strict"
    }
}
