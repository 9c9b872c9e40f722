import ArgumentParser
import Foundation

/// What `portalctl login` keeps for later commands: the session token, the gateway it was opened
/// at and the CA that gateway was trusted with, so later commands need neither flag again.
struct SavedSession: Codable, Equatable {
    /// The bearer token.
    var token: String
    /// The gateway's `host:port`.
    var gateway: String?
    /// The PEM CA file (an absolute path) when the session was opened over TLS.
    var tlsCA: String?

    enum CodingKeys: String, CodingKey {
        case token
        case gateway
        case tlsCA = "tls_ca"
    }

    /// The session saved at `path`, or nil. A file holding only a token (as earlier versions wrote
    /// it) is a session without a gateway.
    static func load(from path: String) -> SavedSession? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        if let session = try? JSONDecoder().decode(SavedSession.self, from: data) { return session }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return token.isEmpty || token.contains("{") ? nil : SavedSession(token: token)
    }

    /// Writes the session to `path`, readable by the owner only from the first byte on (a new 0600
    /// file, then renamed into place).
    func save(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(self)
        let folder = (path as NSString).deletingLastPathComponent
        if !folder.isEmpty, !FileManager.default.fileExists(atPath: folder) {
            try FileManager.default.createDirectory(
                atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        let temporary = path + ".\(getpid()).new"
        let descriptor = open(temporary, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else {
            throw ValidationError("--session: cannot write \(path): \(String(cString: strerror(errno)))")
        }
        let file = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
        do {
            try file.write(contentsOf: data + Data("\n".utf8))
            try file.synchronize()
            try file.close()
            guard rename(temporary, path) == 0 else {
                throw ValidationError("--session: cannot write \(path): \(String(cString: strerror(errno)))")
            }
        } catch {
            unlink(temporary)
            throw error
        }
    }
}
