# frozen_string_literal: true

# The dispatch rule of PANGEA_DSL.md §3.2 with our decisions applied: every
# unresolved call inside a template body lands here. At top level it must be
# one of the seven keywords and opens a block; inside a block every name
# (keywords included) is an attribute or a nested block.
module PangeaCompiler
  KEYWORDS = %w[terraform provider resource variable locals output data].freeze

  # One template's document, current path and root keyword.
  class Dispatcher
    # An empty top-level block, remembered so references to it can be reported.
    Vanished = Struct.new(:keyword, :names, :file, :line)

    def initialize(warnings)
      @doc = {}
      @path = []
      @root = nil
      @warnings = warnings
      @vanished = []
      @fatal = nil
    end

    attr_reader :doc, :vanished, :fatal

    def inside_block?
      !@root.nil?
    end

    def dispatch(name, args, block)
      key = name.to_s
      if @root.nil?
        fail_with(InvalidSynthesizerKeyError.new(key)) unless KEYWORDS.include?(key)
        open_top_level(key, args, block)
      else
        write_attribute(key, args, block)
      end
      NoValue.new(key)
    end

    private

    # A DSL error stays fatal even if the template rescues it: the reference
    # engine's state is corrupt after one, so no valid template relies on
    # carrying on (§3.6).
    def fail_with(error)
      @fatal ||= error
      raise error
    end

    # `resource :type, :name do ... end`: the arguments become path elements.
    def open_top_level(key, args, block)
      unless block
        @warnings.add('BlocklessKeywordWarning',
                      "`#{key}` without a block writes nothing; " \
                      "write `#{key} #{preview(args)} do ... end`")
        return
      end
      @root = key
      @path = [key, *args.map { |a| Document.key(a) }]
      begin
        block.call
        remember_if_empty(key, args)
      ensure
        @path = []
        @root = nil
      end
    end

    # Inside a block: one argument sets a value, a block extends the path, and
    # with both the block runs first and the argument overwrites it (§3.4).
    def write_attribute(key, args, block)
      fail_with(TooManyFieldValuesError.new(key, args)) if args.length > 1
      @path.push(key)
      begin
        run_nested_block(key, args, block) if block
        Document.bury(@doc, @path, Document.copy(args.first, key)) if args.length == 1
        warn_no_value(key) if args.empty? && block.nil?
      ensure
        @path.pop
      end
    end

    def run_nested_block(key, args, block)
      before = Document.dig(@doc, @path)
      if before.is_a?(Hash)
        @warnings.add('RepeatedBlockWarning',
                      "block `#{key}` at `#{@path.join('.')}` merges into the object already there " \
                      "(repeated blocks merge, later keys win); for a list write `#{key}([{...}, {...}])`")
      end
      block.call
      return unless args.length == 1 && !Document.dig(@doc, @path).nil?

      @warnings.add('ArgumentOverridesBlockWarning',
                    "`#{key}` has both a value and a block: the value replaces what the block wrote")
    end

    def warn_no_value(key)
      @warnings.add('NoValueWarning', "`#{key}` has no value and no block and writes nothing")
    end

    def remember_if_empty(key, args)
      return unless Document.dig(@doc, @path).nil?

      loc = Diagnostics.caller_location
      @vanished << Vanished.new(key, args.map { |a| Document.key(a) }, loc&.path, loc&.lineno)
    end

    def preview(args)
      args.map(&:inspect).join(', ')[0, 60]
    end
  end
end
