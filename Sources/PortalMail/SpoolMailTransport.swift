import Foundation

/// Writes each message to `<folder>/<id>.eml`, atomically (write to a temporary file, then rename).
///
/// Delivering the same message again rewrites the same file, so a retry after a crash duplicates nothing.
public struct SpoolMailTransport: MailTransport {
    private let folder: String

    /// A transport writing into `folder` (created when missing).
    public init(folder: String) throws {
        self.folder = folder
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    }

    /// Writes the message file.
    public func deliver(_ mail: OutgoingMail) async throws {
        let name = mail.id.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
        let path = (folder as NSString).appendingPathComponent("\(name).eml")
        try Data(mail.text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
