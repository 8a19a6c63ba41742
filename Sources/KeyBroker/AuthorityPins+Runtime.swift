public import AttestationAPI
public import KeyBrokerInterface

extension AuthorityPins {
    /// The pins as the broker's evidence binds them (`"authorities"` of its runtime data):
    /// `[{"url": normalized URL, "thumbprints": [kid, …]}, …]`, in canonical order.
    public var runtimeValue: TokenValue {
        .array(
            authorities.map { authority in
                .object([
                    "url": .string(authority.url),
                    "thumbprints": .array(authority.thumbprints.map(TokenValue.string)),
                ])
            }
        )
    }
}
