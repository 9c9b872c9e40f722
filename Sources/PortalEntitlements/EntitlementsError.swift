/// Why the entitlements store refused a change or found nothing; the handlers' edge states the
/// status each answers with (`EntitlementsError+RPC.swift`).
enum EntitlementsError: Error, Equatable {
    /// A transferred line names a product the catalog does not hold.
    case productNotInCatalog(productID: String)
    /// A repeated transfer changes `field`, which only a quantity increase may do.
    case transferConflict(field: String, entitlementID: String)
    /// No entitlement with this id belongs to the organization.
    case entitlementNotFound(entitlementID: String)
    /// The organization holds no licenses of the product.
    case productNotHeld(productID: String)
    /// The idempotency key was used before for an activation whose `field` differs.
    case idempotencyKeyReused(differingField: String)
    /// The entitlement expired on `day` (YYYY-MM-DD).
    case entitlementExpired(entitlementID: String, day: String)
    /// The entitlement has no line for the product.
    case productNotOnEntitlement(entitlementID: String, productID: String)
    /// More licenses requested than the line has unactivated.
    case overActivation(
        requested: Int64, unactivated: Int64, available: Int64, productName: String, entitlementID: String)
    /// Another instance changed the licenses between deciding and recording the activation.
    case licensesChangedMeanwhile
}
