"""Evidence: uploaded files and links that prove what a grant asks for; coordinating-body consultations."""
