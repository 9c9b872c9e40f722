import ArgumentParser
import Foundation
import PortalClient

/// `portalctl events`: the organization's audit events from a cursor, as they are recorded (Admins).
struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The organization's events in the order recorded, from a cursor; --follow keeps streaming (Admins).",
        discussion: """
            Without --follow, prints the events after the cursor and stops once caught up. With --follow, \
            prints each event as it is recorded and, when the connection drops or a service restarts, \
            reconnects with the last cursor: nothing is missed or printed twice. --cursor-file keeps the \
            cursor in a file across runs (read at start, replaced after every event).
            """)
    @OptionGroup var global: GlobalOptions
    @Option(help: "Start after this cursor (\"0\": from the first event; default: now, or the --cursor-file's).")
    var cursor: String?
    @Option(help: "Read the cursor from this file at start and keep it there after each event.")
    var cursorFile: String?
    @Option(help: "Only this type: members, licenses or activations (repeat for several).") var type: [String] = []
    @Flag(help: "Keep streaming, reconnecting with the last cursor until interrupted.") var follow = false

    func run() async throws {
        let types = try AuditLog.eventTypes(type)
        var position = try cursor ?? cursorFile.flatMap(Self.readCursor) ?? (follow ? "" : "0")
        try await global.run { client in
            var failures = 0
            while true {
                do {
                    let stream = try await client.portal.watchAuditEvents(
                        .with {
                            $0.cursor = position
                            $0.eventTypes = types
                            $0.heartbeatSeconds = follow ? 15 : 1  // without --follow: stop once caught up
                        })
                    for try await message in stream {
                        failures = 0
                        position = message.cursor
                        if let event = message.event, !message.heartbeat { try print(event, cursor: position) }
                        if let cursorFile { try Self.writeCursor(position, to: cursorFile) }
                        if message.heartbeat, !follow { return }
                    }
                    return
                } catch let error as RPCError where follow && [.unavailable, .deadlineExceeded].contains(error.code) {
                    failures += 1
                    let delay = min(30.0, 0.5 * pow(2.0, Double(min(failures, 6))))
                    FileHandle.standardError.write(
                        Data(
                            "portalctl: \(error.message); reconnecting in \(String(format: "%.1f", delay)) s from cursor \(position.isEmpty ? "now" : position)\n"
                                .utf8))
                    try await Task.sleep(for: .milliseconds(Int(delay * 1000)))
                }
            }
        }
    }

    /// One line per event, written at once (a follower's output is read as it comes): a JSON
    /// object with `--json`, else time, type, user and message.
    private func print(_ event: Portal_Audit_V1_Event, cursor: String) throws {
        var line: String
        if global.json {
            var record = JSONRecords.event(event)
            record["cursor"] = cursor
            let data = try JSONSerialization.data(
                withJSONObject: record, options: [.sortedKeys, .withoutEscapingSlashes])
            line = String(decoding: data, as: UTF8.self)
        } else {
            line = [
                Output.time(event.time), JSONRecords.eventType(event.eventType).capitalized, event.user, event.message,
            ]
            .joined(separator: "  ")
        }
        line += "\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    }

    static func readCursor(_ path: String) -> String? {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
        let cursor = text.trimmingCharacters(in: .whitespacesAndNewlines)
        return cursor.isEmpty ? nil : cursor
    }

    /// Replaces the file in one rename, so a crash leaves the old cursor or the new one.
    static func writeCursor(_ cursor: String, to path: String) throws {
        let partial = path + ".partial"
        guard FileManager.default.createFile(atPath: partial, contents: Data((cursor + "\n").utf8)),
            rename(partial, path) == 0
        else {
            throw ValidationError("--cursor-file: cannot write \(path)")
        }
    }
}
