import PortalAPI
import PortalRPC

/// Server reflection (`grpc.reflection.v1`), so grpcurl and other tools discover the hosted services.
public struct ReflectionService: Grpc_Reflection_V1_ServerReflectionService {
    private let index: ReflectionIndex

    /// Describes `hostedServices` using the descriptors of every generated proto file.
    public init(hostedServices: [String], files: [ProtoFileDescriptor] = ProtoFileRegistry.files) {
        index = ReflectionIndex(hostedServices: hostedServices, files: files)
    }

    /// Answers each request on the stream in order.
    public func serverReflectionInfo(
        requests: RequestStream<Grpc_Reflection_V1_ServerReflectionRequest>,
        responses: ResponseWriter<Grpc_Reflection_V1_ServerReflectionResponse>, context: ServerContext
    ) async throws {
        for try await request in requests {
            try await responses.write(index.answer(request))
        }
    }
}

/// Server reflection under its pre-release name, `grpc.reflection.v1alpha`, which many tools still use.
///
/// The two versions have identical wire formats, so requests are re-read as v1 and answered by it.
public struct ReflectionServiceV1Alpha: Grpc_Reflection_V1alpha_ServerReflectionService {
    private let index: ReflectionIndex

    /// Describes `hostedServices` using the descriptors of every generated proto file.
    public init(hostedServices: [String], files: [ProtoFileDescriptor] = ProtoFileRegistry.files) {
        index = ReflectionIndex(hostedServices: hostedServices, files: files)
    }

    /// Answers each request on the stream in order.
    public func serverReflectionInfo(
        requests: RequestStream<Grpc_Reflection_V1alpha_ServerReflectionRequest>,
        responses: ResponseWriter<Grpc_Reflection_V1alpha_ServerReflectionResponse>, context: ServerContext
    ) async throws {
        for try await request in requests {
            let v1 = try Grpc_Reflection_V1_ServerReflectionRequest(serializedBytes: request.serializedBytes())
            try await responses.write(
                Grpc_Reflection_V1alpha_ServerReflectionResponse(serializedBytes: index.answer(v1).serializedBytes()))
        }
    }
}

/// Looks up proto files by name and by the symbols they define.
struct ReflectionIndex: Sendable {
    private let hostedServices: [String]
    private let filesByName: [String: ProtoFileDescriptor]
    private let fileBySymbol: [String: String]

    init(hostedServices: [String], files: [ProtoFileDescriptor]) {
        self.hostedServices = hostedServices.sorted()
        filesByName = Dictionary(files.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        var symbols: [String: String] = [:]
        for file in files {
            for symbol in file.symbols { symbols[symbol] = file.name }
        }
        fileBySymbol = symbols
    }

    func answer(_ request: Grpc_Reflection_V1_ServerReflectionRequest) -> Grpc_Reflection_V1_ServerReflectionResponse {
        var response = Grpc_Reflection_V1_ServerReflectionResponse()
        response.validHost = request.host
        response.originalRequest = request
        switch request.messageRequest {
        case .fileByFilename(let name)?:
            response.messageResponse = filesResponse(startingAt: name) ?? notFound("file \(name) not found")
        case .fileContainingSymbol(let symbol)?:
            let file = fileBySymbol[symbol.hasPrefix(".") ? String(symbol.dropFirst()) : symbol]
            response.messageResponse =
                file.flatMap(filesResponse(startingAt:)) ?? notFound("symbol \(symbol) not found")
        case .fileContainingExtension(let request)?:
            response.messageResponse = notFound(
                "extension \(request.extensionNumber) of \(request.containingType) not found")
        case .allExtensionNumbersOfType(let type)?:
            if fileBySymbol[type] != nil {
                var numbers = Grpc_Reflection_V1_ExtensionNumberResponse()
                numbers.baseTypeName = type
                response.messageResponse = .allExtensionNumbersResponse(numbers)
            } else {
                response.messageResponse = notFound("type \(type) not found")
            }
        case .listServices?:
            var list = Grpc_Reflection_V1_ListServiceResponse()
            list.service = hostedServices.map { name in
                var service = Grpc_Reflection_V1_ServiceResponse()
                service.name = name
                return service
            }
            response.messageResponse = .listServicesResponse(list)
        case nil:
            var error = Grpc_Reflection_V1_ErrorResponse()
            error.errorCode = Int32(RPCStatusCode.invalidArgument.rawValue)
            error.errorMessage = "message_request: no request set"
            response.messageResponse = .errorResponse(error)
        }
        return response
    }

    /// The file and everything it imports, transitively, the file itself first.
    private func filesResponse(startingAt name: String) -> Grpc_Reflection_V1_ServerReflectionResponse.MessageResponse?
    {
        guard filesByName[name] != nil else { return nil }
        var ordered: [[UInt8]] = []
        var seen: Set<String> = []
        var pending = [name]
        while let next = pending.first {
            pending.removeFirst()
            guard seen.insert(next).inserted, let file = filesByName[next] else { continue }
            ordered.append(file.serialized)
            pending += file.dependencies
        }
        var files = Grpc_Reflection_V1_FileDescriptorResponse()
        files.fileDescriptorProto = ordered
        return .fileDescriptorResponse(files)
    }

    private func notFound(_ message: String) -> Grpc_Reflection_V1_ServerReflectionResponse.MessageResponse {
        var error = Grpc_Reflection_V1_ErrorResponse()
        error.errorCode = Int32(RPCStatusCode.notFound.rawValue)
        error.errorMessage = message
        return .errorResponse(error)
    }
}
