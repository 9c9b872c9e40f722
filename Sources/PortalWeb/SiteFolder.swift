import Foundation
import NIOPosix
import PortalCrypto
import PortalRPC

/// The web portal's files in a folder on disk, read at each request (`--site-dir`), so a change to
/// them shows on reload without rebuilding.
///
/// Only regular files strictly inside the folder are served: a path naming `.`, `..` or a hidden
/// file, or one whose symbolic links resolve outside the folder, is refused.
public struct SiteFolder: Sendable {
    /// The folder, its symbolic links resolved.
    public let root: String

    /// The largest file served.
    static let maximumFileSize = 32 << 20

    /// The folder at `path`; fails unless it is a folder (other than `/`).
    public init(path: String) throws {
        guard let resolved = Self.resolve(path) else {
            throw RPCError(.invalidArgument, "--site-dir: \(path) does not exist")
        }
        var isFolder: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resolved, isDirectory: &isFolder), isFolder.boolValue else {
            throw RPCError(.invalidArgument, "--site-dir: \(path) is not a folder")
        }
        guard resolved != "/" else {
            throw RPCError(.invalidArgument, "--site-dir: refusing to serve the whole file system")
        }
        root = resolved
    }

    /// What a look-up found.
    enum Lookup: Sendable {
        /// A regular file inside the folder, just read.
        case file(EmbeddedFile)
        /// Nothing there, or a folder.
        case missing
        /// A path or file that is never served: outside the folder, hidden, not a regular file or too large.
        case refused
    }

    /// The file at URL path `path` (percent-encoded, as sent), read now on the blocking-I/O threads.
    func lookUp(_ path: String) async -> Lookup {
        (try? await NIOThreadPool.singleton.runIfActive { self.contents(at: path) }) ?? .missing
    }

    /// The file at URL path `path`, read on the calling thread.
    func contents(at path: String) -> Lookup {
        guard let decoded = path.removingPercentEncoding, decoded.hasPrefix("/"), !decoded.contains("\0") else {
            return .refused
        }
        let names = decoded.split(separator: "/")
        // `.` and `..` start with a dot too; hidden files are never embedded either.
        guard !names.contains(where: { $0.hasPrefix(".") }) else { return .refused }
        guard !names.isEmpty, let resolved = Self.resolve(root + "/" + names.joined(separator: "/")) else {
            return .missing
        }
        guard resolved.hasPrefix(root + "/") else { return .refused }
        // Without following a link swapped in since, and without waiting on a FIFO.
        let descriptor = open(resolved, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else { return errno == ENOENT ? .missing : .refused }
        defer { close(descriptor) }
        // The file opened is the one checked, even if a folder on the way was swapped for a link meanwhile.
        if let opened = Self.resolve("/proc/self/fd/\(descriptor)"), !opened.hasPrefix(root + "/") { return .refused }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { return .refused }
        switch status.st_mode & S_IFMT {
        case S_IFREG: break
        case S_IFDIR: return .missing
        default: return .refused
        }
        guard status.st_size <= Self.maximumFileSize,
            let bytes = Self.readAll(descriptor, expected: Int(status.st_size))
        else { return .refused }
        let etag =
            "\"" + SecretHashing.sha256(bytes: bytes).prefix(10).map { String(format: "%02x", $0) }.joined() + "\""
        return .file(EmbeddedFile(path: "/" + names.joined(separator: "/"), etag: etag, bytes: bytes))
    }

    /// `path` with every symbolic link, `.` and `..` resolved; nil when it does not exist.
    private static func resolve(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// Every byte of the open file, or nil on a read error or past the largest file served.
    private static func readAll(_ descriptor: Int32, expected: Int) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(expected)
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count == 0 { return bytes }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            bytes += buffer[..<count]
            if bytes.count > maximumFileSize { return nil }
        }
    }
}

extension EmbeddedFile {
    /// A file of `bytes`, read from disk.
    init(path: String, etag: String, bytes: [UInt8]) {
        self.path = path
        self.etag = etag
        self.bytes = bytes
    }
}
