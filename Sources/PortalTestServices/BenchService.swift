import PortalAPI
import PortalRPC

/// `bench.v1.Bench`: answers every call with the same fixed ten-item response, and streams those
/// items in turn, for load tests.
public struct BenchService: Bench_V1_BenchService {
    private let response: Bench_V1_Resp

    /// Creates the service with its fixed response.
    public init() {
        var response = Bench_V1_Resp()
        response.items = (1...10).map { index in
            var item = Bench_V1_Item()
            let digits = String(index)
            item.id = "00000000-0000-4000-8000-" + String(repeating: "0", count: 12 - digits.count) + digits
            item.name = "Widget " + (index < 10 ? "0" : "") + digits
            item.quantity = Int64(1000 * index)
            return item
        }
        self.response = response
    }

    /// Most items one `Stream` call sends.
    public static let maxStreamedItems: Int32 = 10_000_000

    public func unary(request: Bench_V1_Req, context: ServerContext) async throws -> Bench_V1_Resp {
        response
    }

    public func stream(
        request: Bench_V1_Req, responses: ResponseWriter<Bench_V1_Item>, context: ServerContext
    ) async throws {
        guard (0...Self.maxStreamedItems).contains(request.pageSize) else {
            throw RPCError.invalidArgument(
                field: "page_size", "must be between 0 and \(Self.maxStreamedItems), got \(request.pageSize)")
        }
        let items = response.items
        for index in 0..<Int(request.pageSize) {
            try await responses.write(items[index % items.count])
        }
    }
}
