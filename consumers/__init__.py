"""The department side: one runtime and one module of business rules per department."""
