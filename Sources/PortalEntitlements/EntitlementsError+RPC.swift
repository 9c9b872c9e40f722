import PortalRPC

extension EntitlementsError: RPCErrorConvertible {
    /// The status and message the caller receives, naming the field at fault.
    var rpcError: RPCError {
        switch self {
        case .productNotInCatalog(let productID):
            RPCError(.failedPrecondition, "lines: product \(productID) is not in the catalog; upsert it first")
        case .transferConflict(let field, let entitlementID):
            RPCError(
                .failedPrecondition,
                "\(field): entitlement \(entitlementID) was already transferred with a different value; only quantities can grow"
            )
        case .entitlementNotFound(let entitlementID):
            RPCError(.notFound, "entitlement_id: no entitlement \(entitlementID)")
        case .productNotHeld(let productID):
            RPCError(.notFound, "product_id: the organization holds no licenses of \(productID)")
        case .idempotencyKeyReused(let field):
            .invalidArgument(
                field: "idempotency_key",
                "was already used for a different activation (its \(field) differs); use a new key for a new request")
        case .entitlementExpired(let entitlementID, let day):
            RPCError(
                .failedPrecondition,
                "entitlement_id: entitlement \(entitlementID) expired on \(day) and cannot be activated")
        case .productNotOnEntitlement(let entitlementID, let productID):
            RPCError(.notFound, "product_id: entitlement \(entitlementID) has no licenses of product \(productID)")
        case .overActivation(let requested, let unactivated, let available, let productName, let entitlementID):
            RPCError(
                .failedPrecondition,
                "quantity: \(requested) requested but only \(unactivated) of \(available) licenses of \(productName) are unactivated on entitlement \(entitlementID)"
            )
        case .licensesChangedMeanwhile:
            RPCError(.aborted, "activation: licenses changed while the activation was decided; try again")
        }
    }
}
