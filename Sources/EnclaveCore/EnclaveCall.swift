/// A call across the enclave boundary, declared once in a module that both host and enclave import.
///
/// A conforming type names the call and fixes its input and output types. The same protocol describes ECALLs
/// (host → enclave) and OCALLs (enclave → host); which side serves it is decided by where its handler is registered.
///
/// ```swift
/// public enum Greet: EnclaveCall {
///     public typealias Input = String
///     public typealias Output = String
///     public static var name: String { "hello.greet" }
/// }
/// ```
public protocol EnclaveCall: Sendable {
    /// The argument type, encoded with ``BinaryEncoder``.
    associatedtype Input: Codable & Sendable
    /// The result type, encoded with ``BinaryEncoder``.
    associatedtype Output: Codable & Sendable
    /// A stable name that identifies the call on the wire. Keep it unchanged across versions.
    static var name: String { get }
}
