import PortalAPI
import PortalRPC

extension PortalGatewayService {
    // MARK: Licensing overview

    public func listProducts(
        request: Portal_Gateway_V1_ListProductsRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_ListProductsResponse {
        let (caller, call) = try await authorize(context, .viewPortal)
        let page = try await call.run("entitlements") { metadata, options in
            try await backends.entitlements.listProducts(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        }
        return .init(answering: page)
    }

    public func getProduct(
        request: Portal_Gateway_V1_GetProductRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_GetProductResponse {
        let (caller, call) = try await authorize(context, .viewPortal)
        let detail = try await call.run("entitlements") { metadata, options in
            try await backends.entitlements.getProduct(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        }
        return .init(answering: detail)
    }

    public func listEntitlements(
        request: Portal_Gateway_V1_ListEntitlementsRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_ListEntitlementsResponse {
        let (caller, call) = try await authorize(context, .viewPortal)
        let page = try await call.run("entitlements") { metadata, options in
            try await backends.entitlements.listEntitlements(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        }
        return .init(answering: page)
    }

    public func getEntitlement(
        request: Portal_Gateway_V1_GetEntitlementRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_GetEntitlementResponse {
        let (caller, call) = try await authorize(context, .viewPortal)
        let detail = try await call.run("entitlements") { metadata, options in
            try await backends.entitlements.getEntitlement(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        }
        return .init(answering: detail)
    }

    public func activate(
        request: Portal_Gateway_V1_ActivateRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_ActivateResponse {
        let (caller, call) = try await authorize(context, .activate)
        let result = try await call.run("entitlements") { metadata, options in
            try await backends.entitlements.activate(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        }
        return .init(answering: result)
    }

    // MARK: Activations log

    public func listActivations(
        request: Portal_Gateway_V1_ListActivationsRequest, context: ServerContext
    ) async throws -> Portal_Gateway_V1_ListActivationsResponse {
        let (caller, call) = try await authorize(context, .viewPortal)
        let page = try await call.run("entitlements") { metadata, options in
            try await backends.entitlements.listActivations(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        }
        return .init(answering: page)
    }

    public func exportActivationsCsv(
        request: Portal_Gateway_V1_ExportActivationsCsvRequest,
        responses: ResponseWriter<Portal_Gateway_V1_ExportActivationsCsvResponse>,
        context: ServerContext
    ) async throws {
        let (caller, call) = try await authorize(context, .exportCSV)
        try await call.stream("entitlements", to: responses) { metadata, options in
            try await backends.entitlements.exportActivationsCsv(
                request.scoped(to: caller.organizationID), metadata: metadata, options: options)
        } chunk: { piece in
            .init(answering: piece)
        }
    }
}
