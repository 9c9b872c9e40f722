/// Formats an export's rows as CSV and sends it in chunks, one batch behind the reading: while a
/// batch is formatted and sent, its caller reads the next one, so the database and the encoding work
/// in parallel. Batches must be appended one after another (never concurrently); memory holds at most
/// the batch being formatted, the one being read and one chunk.
public final class CSVExport<Row: Sendable>: @unchecked Sendable {
    private let format: @Sendable (Row) -> [String]
    private let send: @Sendable ([UInt8]) async throws -> Void
    private let chunkBytes: Int
    /// Formats and sends the batch before; its writer carries on with the next batch.
    private var pending: Task<CSVWriter, any Error>

    /// An export beginning with `header`, each row formatted by `format`, sent by `send` in chunks of
    /// at least `chunkBytes` (the last may be smaller).
    public init(
        header: [String], chunkBytes: Int, format: @escaping @Sendable (Row) -> [String],
        send: @escaping @Sendable ([UInt8]) async throws -> Void
    ) {
        self.format = format
        self.send = send
        self.chunkBytes = chunkBytes
        var writer = CSVWriter()
        writer.appendRow(header)
        pending = Task { [writer] in writer }
    }

    deinit {
        pending.cancel()
    }

    /// Formats and sends `rows` after the rows before them, once the batch before is sent; returns
    /// at once, so the caller can read the next batch meanwhile.
    public func append(_ rows: [Row]) async throws {
        let writer = try await pending.value
        let (format, send, chunkBytes) = (format, send, chunkBytes)
        pending = Task {
            var writer = writer
            for row in rows {
                writer.appendRow(format(row))
                if writer.byteCount >= chunkBytes { try await send(writer.takeBytes()) }
            }
            return writer
        }
    }

    /// Sends what is left once every batch is formatted.
    public func finish() async throws {
        var writer = try await pending.value
        if writer.byteCount > 0 { try await send(writer.takeBytes()) }
    }
}
