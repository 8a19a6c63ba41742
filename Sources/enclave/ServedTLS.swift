import ArgumentParser
import AttestationService
import EnclaveCore
import Foundation
import Logging

/// The TLS identity a served command (`serve attestation`, `serve key-broker`, `cleanroom serve`) answers with.
enum ServedTLS {
    /// The certificate and key given, or a self-signed pair kept in `dataDirectory/tls`; nil for plain HTTP
    /// (`insecureHttp`, which each command allows on loopback only). Prints the certificate's fingerprint, unbuffered,
    /// so that a supervisor reading a pipe sees it before the service could stop; `service` starts that line ("Key
    /// broker ", or "" for the attestation service, whose line scripts read). A file that cannot be used is a usage
    /// error naming it.
    static func identity(
        service: String,
        insecureHttp: Bool,
        certificate: String?,
        key: String?,
        dataDirectory: String,
        host: String,
        logger: Logger
    ) throws -> TLSIdentity? {
        if insecureHttp {
            logger.warning("serving plain HTTP on loopback (--insecure-http)")
            return nil
        }
        do {
            let identity: TLSIdentity
            if let certificate, let key {
                identity = try TLSIdentity(certificatePath: certificate, keyPath: key)
            } else {
                identity = try TLSIdentity.selfSigned(directory: dataDirectory, hostnames: [host])
                logger.notice("self-signed TLS certificate", metadata: ["path": "\(dataDirectory)/tls/certificate.pem"])
            }
            FileHandle.standardOutput.write(
                Data("\(service)TLS certificate SHA-256 fingerprint: \(identity.fingerprint)\n".utf8)
            )
            return identity
        } catch let error as EnclaveError {
            throw ValidationError(error.reason)
        } catch let error as ServiceError {
            throw ValidationError(error.message)
        }
    }
}
