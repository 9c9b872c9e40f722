import ArgumentParser
import Foundation
import PortalClient

/// Writes an export's chunks to `path` as they arrive, showing progress on standard error. The
/// rows go to `path.partial` first; only a complete export replaces `path`.
func writeExport<Chunk: Sendable>(
    _ chunks: ResponseStream<Chunk>, to path: String, bytes: (Chunk) -> [UInt8]
) async throws {
    let partial = path + ".partial"
    guard FileManager.default.createFile(atPath: partial, contents: nil),
        let file = FileHandle(forWritingAtPath: partial)
    else {
        throw ValidationError("--csv: cannot write \(partial)")
    }
    var complete = false
    defer {
        try? file.close()
        if !complete { unlink(partial) }
    }
    let interactive = isatty(STDERR_FILENO) == 1
    var written = 0
    var rows = 0
    var lastShown = ContinuousClock.now
    for try await chunk in chunks {
        let data = bytes(chunk)
        try file.write(contentsOf: data)
        written += data.count
        rows += data.reduce(0) { $0 + ($1 == UInt8(ascii: "\n") ? 1 : 0) }
        if interactive, ContinuousClock.now - lastShown > .milliseconds(200) {
            lastShown = .now
            FileHandle.standardError.write(
                Data("\rExporting… \(max(rows - 1, 0)) rows, \(String(format: "%.1f", Double(written) / 1e6)) MB".utf8))
        }
    }
    try file.synchronize()
    guard rename(partial, path) == 0 else {
        throw ValidationError("--csv: cannot write \(path): \(String(cString: strerror(errno)))")
    }
    complete = true
    if interactive { FileHandle.standardError.write(Data("\r".utf8)) }
    FileHandle.standardError.write(
        Data(
            "Exported \(max(rows - 1, 0)) rows (\(String(format: "%.1f", Double(written) / 1e6)) MB) to \(path)\n".utf8)
    )
}

struct Activations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The activations log; --csv exports every matching row (Admins).")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var paging: PagingOptions
    @Option(help: "Activated on or after this date (2026-03-05).") var from: String?
    @Option(help: "Activated before this date.") var to: String?
    @Option(help: "Only this product id (repeat for several).") var product: [String] = []
    @Option(help: "Search product, project, manager, activated by, serial number and entitlement id.") var search:
        String = ""
    @Option(help: "Export every matching activation, all columns, to this CSV file.") var csv: String?
    @Option(help: "IANA time zone for CSV times (default UTC).") var timeZone: String = ""

    func run() async throws {
        let start = try Output.parseDate(from, option: "--from")
        let end = try Output.parseDate(to, option: "--to")
        try await global.run { client in
            if let csv {
                let chunks = try await client.portal.exportActivationsCsv(
                    .with {
                        $0.orderBy = paging.sort
                        $0.activationDateStart = start
                        $0.activationDateEnd = end
                        $0.productIds = product
                        $0.searchText = search
                        $0.timeZone = timeZone
                    })
                return try await writeExport(chunks, to: csv) { $0.chunk }
            }
            let page = try await client.portal.listActivations(
                .with {
                    $0.pageSize = paging.pageSize
                    $0.pageToken = paging.pageToken
                    $0.orderBy = paging.sort
                    $0.activationDateStart = start
                    $0.activationDateEnd = end
                    $0.productIds = product
                    $0.searchText = search
                }, options: global.callOptions)
            if global.json {
                return try Output.json(
                    JSONRecords.page(
                        "activations", page.activations.map(JSONRecords.activation), nextPageToken: page.nextPageToken,
                        totalSize: page.totalSize))
            }
            Output.table(
                [
                    "Activation date", "Product", "Qty", "Project", "Project manager", "Activated by", "Entitlement",
                    "Serial",
                ],
                page.activations.map {
                    [
                        Output.time($0.activationDate), $0.productName, "\($0.quantity)", $0.projectName,
                        $0.projectManager, $0.activatedBy, $0.entitlementID, $0.serialNumber,
                    ]
                })
            Output.pageFooter(shown: page.activations.count, total: page.totalSize, nextPageToken: page.nextPageToken)
        }
    }
}

struct AuditLog: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "audit", abstract: "The audit & event log; --csv exports every matching event (Admins).")
    @OptionGroup var global: GlobalOptions
    @OptionGroup var paging: PagingOptions
    @Option(help: "At or after this date (2026-03-05).") var from: String?
    @Option(help: "Before this date.") var to: String?
    @Option(help: "Only this type: members, licenses or activations (repeat for several).") var type: [String] = []
    @Option(help: "Only events by this user (name or email, or \"system\").") var user: String = ""
    @Option(help: "Full-text search over message, user and subject.") var search: String = ""
    @Option(help: "Export every matching event, all columns, to this CSV file.") var csv: String?
    @Option(help: "IANA time zone for CSV times (default UTC).") var timeZone: String = ""

    func run() async throws {
        let start = try Output.parseDate(from, option: "--from")
        let end = try Output.parseDate(to, option: "--to")
        let types = try Self.eventTypes(type)
        try await global.run { client in
            if let csv {
                let chunks = try await client.portal.exportAuditEventsCsv(
                    .with {
                        $0.orderBy = paging.sort
                        $0.timeStart = start
                        $0.timeEnd = end
                        $0.eventTypes = types
                        $0.user = user
                        $0.searchText = search
                        $0.timeZone = timeZone
                    })
                return try await writeExport(chunks, to: csv) { $0.chunk }
            }
            let page = try await client.portal.listAuditEvents(
                .with {
                    $0.pageSize = paging.pageSize
                    $0.pageToken = paging.pageToken
                    $0.orderBy = paging.sort
                    $0.timeStart = start
                    $0.timeEnd = end
                    $0.eventTypes = types
                    $0.user = user
                    $0.searchText = search
                }, options: global.callOptions)
            if global.json {
                return try Output.json(
                    JSONRecords.page(
                        "events", page.events.map(JSONRecords.event), nextPageToken: page.nextPageToken,
                        totalSize: page.totalSize))
            }
            Output.table(
                ["Date & time", "Message", "Type", "User"],
                page.events.map {
                    [Output.time($0.time), $0.message, JSONRecords.eventType($0.eventType).capitalized, $0.user]
                })
            Output.pageFooter(shown: page.events.count, total: page.totalSize, nextPageToken: page.nextPageToken)
        }
    }
}

extension AuditLog {
    /// `--type` values as event types.
    static func eventTypes(_ names: [String]) throws -> [Portal_Audit_V1_EventType] {
        try names.map {
            switch $0.lowercased() {
            case "members": .members
            case "licenses": .licenses
            case "activations": .activations
            default: throw ValidationError("--type: expected members, licenses or activations, not \($0)")
            }
        }
    }
}
