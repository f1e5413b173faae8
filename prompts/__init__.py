"""Data only: the built-in prompt sets and the judge and gold templates. No code lives here and the
package never imports it: `deccp_eval.datasets.loading.builtin` finds these files."""
