"""The platform's components: one ComponentResource per system, plus shared shapes."""
