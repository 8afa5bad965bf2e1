"""The register-office side: publisher library, file publishing, simulated registrations."""
