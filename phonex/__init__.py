"""phonex: can phonemes be pulled out of modern CTC speech models?

The helper package behind the numbered notebooks. Importing it loads nothing heavy; each module
(config, audio, phonemes, lexicon, tts, augment, corpus, synth, plots, cli) is imported on use.
"""

__version__ = "0.1.0"
